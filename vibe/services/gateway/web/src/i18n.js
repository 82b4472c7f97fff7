// The interface text in English and Korean. The language is the one the candidate chose
// (remembered in localStorage), else the browser's first of ko/en, else English; <html lang>
// follows it, so screen readers pronounce the page in the right language.
// Elements carry data-i18n="key" (text), data-i18n-placeholder / data-i18n-label (aria-label).

const TEXT = {
  en: {
    title: "Vibe coding test",
    language: "Language",
    start_heading: "Start a session",
    start_intro: "Solve a problem with an AI tutor at your side. The tutor guides you but will not hand over the solution; how you work with it is part of the grade.",
    start_link: "Got a link from your hiring team? Open it: it starts your session. Otherwise a session is created here with a backend API key (scope sessions:create; make up prints a development one).",
    your_id: "Your id",
    problem: "Problem",
    api_key: "API key",
    start: "Start",
    problem_heading: "Problem",
    tutor: "Tutor",
    message_placeholder: "Ask the tutor… (Ctrl+Enter sends)",
    message_label: "Message to the tutor",
    send: "Send",
    code_heading: "Your code (reads stdin, writes stdout)",
    code_language: "Programming language",
    editor_label: "Code editor",
    editor_help: "Tab indents; press Esc, then Tab, to leave the editor.",
    run_tests: "Run the visible tests",
    running: "Running…",
    submit: "Submit for grading",
    submit_confirm: "Submit now? The chat closes and your code is graded.",
    turn: "turn {n}",
    refused: "refused: {reason}",
    leak_cut: "reply cut: it began reproducing the reference solution",
    session_line: "session {id} · {candidate}",
    time_left: "Time left {t}",
    time_up: "Time is up: your code is being submitted.",
    time_up_closed: "Time is up.",
    visible_summary: "{passed} of {total} visible tests passed ({verdict}) · not graded",
    compile_output: "Compiler output",
    test: "test",
    verdict: "verdict",
    cpu: "CPU",
    detail: "detail",
    progress: "{stage} {done}/{total}: {message}",
    submitted: "Submitted",
    graded_at: "graded at {t}",
    submitted_late: "submitted {s} s after the time limit",
    check_again: "Check again",
    your_result: "Your result",
    report: "Report",
    total: "total",
    prompt: "prompt",
    performance: "performance",
    correctness: "correctness",
    llm: "LLM",
    degraded: "degraded",
    turns: "Turns",
    intent_criterion: "intent / criterion",
    score: "score",
    guardrail_weight: "guardrail / weight",
    why: "why",
    weight: "weight {w}",
    ok: "ok",
    median_of: " (median of {n}, spread {s})",
    no_refusals: "no turns refused",
    refused_turns: "{n} turn(s) refused: {list}",
    leak_turns: "; reply cut by the leak check on turn(s) {list}",
    guardrail: "Guardrail",
    holistic: "Conversation as a whole: {score}",
    holistic_precomputed: "The conversation as a whole was judged with turn {turn}'s evaluation (precomputed, no LLM call at submit).",
    holistic_at_submit: "The conversation as a whole was judged at submit.",
    criterion: "criterion",
    evidence: "evidence",
    rubric: "Rubric",
    tests: "Tests: {passed}/{total}",
    hidden: "(hidden)",
    v_accepted: "accepted",
    v_wrong_answer: "wrong answer",
    v_time_limit_exceeded: "time limit exceeded",
    v_memory_limit_exceeded: "memory limit exceeded",
    v_runtime_error: "runtime error",
    v_compile_error: "compile error",
    v_output_limit_exceeded: "output limit exceeded",
    v_not_run: "not run",
    // reviewer page
    review_title: "Review",
    review_key_help: "A backend API key with the scope reports:read. It is kept in this tab only (sessionStorage).",
    load: "Load",
    forget_key: "Forget the key",
    sessions: "Sessions",
    status: "status",
    all: "all",
    candidate: "candidate",
    created: "created",
    grade: "grade",
    more: "More",
    open: "Open",
    transcript: "Transcript",
    evaluation: "Evaluation",
    not_evaluated: "not evaluated yet",
    candidate_said: "Candidate",
    tutor_said: "Tutor",
    interrupted: "interrupted",
    code_and_tests: "Code and tests",
    integrity: "Integrity",
    integrity_score: "{score}% of the submission's fingerprints were in the tutor's replies{flag}",
    flagged: " · flagged for review",
    submitted_lines: "submitted (line {line})",
    shown_in_turn: "shown in turn {turn}",
    no_fragments: "no fragment of the submission appeared in the tutor's replies",
    export_json: "Export JSON",
    print: "Print",
    release: "Release the report to the candidate",
    released: "released {t}",
    no_report: "No report yet (not submitted).",
    summary: "Summary",
    back: "All sessions",
    none: "none",
  },
  ko: {
    title: "바이브 코딩 테스트",
    language: "언어",
    start_heading: "세션 시작",
    start_intro: "AI 튜터와 함께 문제를 풀어 보세요. 튜터는 방향을 안내하지만 정답을 알려 주지는 않습니다. 튜터를 어떻게 활용하는지도 평가에 포함됩니다.",
    start_link: "채용 담당자에게 받은 링크가 있다면 그 링크를 여세요. 세션이 바로 시작됩니다. 없다면 여기서 백엔드 API 키(권한 sessions:create, make up이 개발용 키를 출력합니다)로 세션을 만듭니다.",
    your_id: "내 ID",
    problem: "문제",
    api_key: "API 키",
    start: "시작",
    problem_heading: "문제",
    tutor: "튜터",
    message_placeholder: "튜터에게 질문하세요… (Ctrl+Enter로 보내기)",
    message_label: "튜터에게 보낼 메시지",
    send: "보내기",
    code_heading: "코드 (표준 입력을 읽고 표준 출력에 씁니다)",
    code_language: "프로그래밍 언어",
    editor_label: "코드 편집기",
    editor_help: "Tab은 들여쓰기입니다. 편집기에서 나가려면 Esc를 누른 뒤 Tab을 누르세요.",
    run_tests: "공개 테스트 실행",
    running: "실행 중…",
    submit: "제출하고 채점받기",
    submit_confirm: "지금 제출할까요? 채팅이 닫히고 코드가 채점됩니다.",
    turn: "{n}번째 턴",
    refused: "거절됨: {reason}",
    leak_cut: "답변 중단: 모범 답안을 그대로 보여 주기 시작했습니다",
    session_line: "세션 {id} · {candidate}",
    time_left: "남은 시간 {t}",
    time_up: "시간이 끝났습니다. 코드를 제출하고 있습니다.",
    time_up_closed: "시간이 끝났습니다.",
    visible_summary: "공개 테스트 {total}개 중 {passed}개 통과 ({verdict}) · 채점에 반영되지 않음",
    compile_output: "컴파일러 출력",
    test: "테스트",
    verdict: "판정",
    cpu: "CPU",
    detail: "상세",
    progress: "{stage} {done}/{total}: {message}",
    submitted: "제출 완료",
    graded_at: "채점 시각 {t}",
    submitted_late: "제한 시간이 지난 뒤 {s}초 후에 제출됨",
    check_again: "다시 확인",
    your_result: "결과",
    report: "리포트",
    total: "총점",
    prompt: "프롬프트",
    performance: "성능",
    correctness: "정확성",
    llm: "LLM",
    degraded: "대체 처리됨",
    turns: "턴별 평가",
    intent_criterion: "의도 / 기준",
    score: "점수",
    guardrail_weight: "가드레일 / 가중치",
    why: "이유",
    weight: "가중치 {w}",
    ok: "정상",
    median_of: " ({n}회 채점의 중앙값, 편차 {s})",
    no_refusals: "거절된 턴 없음",
    refused_turns: "거절된 턴 {n}개: {list}",
    leak_turns: "; 유출 검사로 답변이 중단된 턴: {list}",
    guardrail: "가드레일",
    holistic: "대화 전체 평가: {score}",
    holistic_precomputed: "대화 전체 평가는 {turn}번째 턴의 평가와 함께 미리 이루어졌습니다 (제출 시 LLM 호출 없음).",
    holistic_at_submit: "대화 전체 평가는 제출 시에 이루어졌습니다.",
    criterion: "기준",
    evidence: "근거",
    rubric: "루브릭",
    tests: "테스트: {passed}/{total}",
    hidden: "(비공개)",
    v_accepted: "통과",
    v_wrong_answer: "오답",
    v_time_limit_exceeded: "시간 초과",
    v_memory_limit_exceeded: "메모리 초과",
    v_runtime_error: "런타임 오류",
    v_compile_error: "컴파일 오류",
    v_output_limit_exceeded: "출력 초과",
    v_not_run: "실행 안 함",
    review_title: "검토",
    review_key_help: "reports:read 권한이 있는 백엔드 API 키. 이 탭에만 보관됩니다(sessionStorage).",
    load: "불러오기",
    forget_key: "키 지우기",
    sessions: "세션 목록",
    status: "상태",
    all: "전체",
    candidate: "응시자",
    created: "생성 시각",
    grade: "등급",
    more: "더 보기",
    open: "열기",
    transcript: "대화 기록",
    evaluation: "평가",
    not_evaluated: "아직 평가되지 않음",
    candidate_said: "응시자",
    tutor_said: "튜터",
    interrupted: "중단됨",
    code_and_tests: "코드와 테스트",
    integrity: "무결성",
    integrity_score: "제출 코드 지문의 {score}%가 튜터의 답변에 있었습니다{flag}",
    flagged: " · 검토 대상으로 표시됨",
    submitted_lines: "제출 코드 ({line}번째 줄부터)",
    shown_in_turn: "{turn}번째 턴에서 보여 준 코드",
    no_fragments: "튜터의 답변에 나온 제출 코드 조각이 없습니다",
    export_json: "JSON 내보내기",
    print: "인쇄",
    release: "응시자에게 리포트 공개",
    released: "공개 시각 {t}",
    no_report: "아직 리포트가 없습니다(미제출).",
    summary: "요약",
    back: "전체 세션",
    none: "없음",
  },
};

export const LANGUAGES = { en: "English", ko: "한국어" };
const STORE = "vibe-lang";
let current = pick();

function pick() {
  const saved = localStorage.getItem(STORE);
  if (saved && TEXT[saved]) return saved;
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (TEXT[base]) return base;
  }
  return "en";
}

export const lang = () => current;

/** A test verdict (VERDICT_WRONG_ANSWER) in words; an unknown one as it came. */
export function verdictText(verdict) {
  const name = (verdict || "").replace("VERDICT_", "").toLowerCase();
  return TEXT[current][`v_${name}`] ?? TEXT.en[`v_${name}`] ?? name;
}

/** The text of `key` in the current language, with {name} replaced from `params`. */
export function t(key, params = {}) {
  const text = TEXT[current][key] ?? TEXT.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (params[name] ?? ""));
}

const listeners = [];
/** `fn` runs now and after every change of language (to redraw what the page drew itself). */
export function onLanguage(fn) { listeners.push(fn); fn(); }

export function setLanguage(code) {
  if (!TEXT[code]) return;
  current = code;
  localStorage.setItem(STORE, code);
  applyStatic();
  for (const fn of listeners) fn();
}

/** Fills every data-i18n* element and <html lang>. */
export function applyStatic(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
}

/** The language switcher: a <select> whose choice is remembered. */
export function languageSwitcher(select) {
  select.innerHTML = "";
  for (const [code, name] of Object.entries(LANGUAGES)) {
    const option = document.createElement("option");
    option.value = code; option.textContent = name; option.lang = code;
    select.appendChild(option);
  }
  select.value = current;
  select.addEventListener("change", () => setLanguage(select.value));
  applyStatic();
}
