// The candidate's page (index.html): start or resume a session, read the problem, chat with the
// tutor (the reply streamed and rendered as Markdown while it arrives), write code in the editor,
// run the visible tests, submit (with progress), and read the report as VIBE_CANDIDATE_REPORT
// allows. With a time limit, a timer counts down and the code is submitted when it ends.
import { $, api, ApiError, clockSkewMs, el, fixed, lower, streamEvents } from "./api.js";
import { createEditor } from "./editor.js";
import { applyStatic, lang, languageSwitcher, onLanguage, t, verdictText } from "./i18n.js";
import { renderInto, streamingRenderer } from "./markdown.js";
import { guardrailLine, holisticBlock, scoresBlock, testsTable, turnsTable } from "./report.js";

let session = JSON.parse(sessionStorage.getItem("vibe-session") || "null");
let current = null; // the Session as the API returned it
let editor = null;
let lastReport = null;
let lastRun = null;
let timer = 0;
let announced = 0; // the last "time left" mark read out
let submitting = false;

const authHeaders = () => ({ "Content-Type": "application/json", Authorization: "Bearer " + session.token });

function addMessage(role, text, turn) {
  const body = el("div", { class: "md" });
  renderInto(body, text);
  const meta = el("div", { class: "meta" });
  if (turn) meta.textContent = t("turn", { n: turn });
  const bubble = el("div", { class: `msg ${role}` }, body, meta);
  $("chat").appendChild(bubble);
  $("chat").scrollTop = $("chat").scrollHeight;
  return bubble;
}

async function loadProblems() {
  const { problems } = await api("/api/problems");
  $("problem").replaceChildren(...problems.map((p) =>
    el("option", { value: p.problem_id, text: `${p.title} (${p.difficulty})` })));
}

function showWorkspace(s) {
  current = s;
  $("start").hidden = true;
  $("workspace").hidden = false;
  $("title").textContent = s.problem.title;
  drawStatement();
  const languages = s.problem.languages && s.problem.languages.length ? s.problem.languages : ["python"];
  $("language").replaceChildren(...languages.map((name) => el("option", { value: name, text: name })));
  const saved = JSON.parse(sessionStorage.getItem(`vibe-code:${s.session_id}`) || "null");
  if (saved && languages.includes(saved.language)) $("language").value = saved.language;
  const code = saved ? saved.code : (s.problem.starter_code || "");
  if (!editor) {
    editor = createEditor($("editor"), {
      doc: code, language: $("language").value, label: t("editor_label"),
      onChange: (text) => sessionStorage.setItem(`vibe-code:${s.session_id}`,
        JSON.stringify({ language: $("language").value, code: text })),
    });
  } else {
    editor.value = code;
  }
  editor.setLanguage($("language").value);
  $("chat").replaceChildren();
  for (const m of s.messages || []) addMessage(m.role === "ROLE_USER" ? "user" : "assistant", m.content, m.turn);
  const closed = s.status && s.status !== "SESSION_STATUS_ACTIVE";
  setClosed(closed);
  startTimer(s);
  drawStatus();
}

// The statement in the interface's language when the problem bank has it (statement_ko).
function drawStatement() {
  if (!current) return;
  const p = current.problem;
  const text = lang() === "ko" && p.statement_ko ? p.statement_ko : p.statement;
  renderInto($("statement"), text);
  $("statement").lang = lang() === "ko" && p.statement_ko ? "ko" : "en";
}

function setClosed(closed) {
  for (const id of ["send", "submit", "run", "message"]) $(id).disabled = closed;
  if (editor) editor.setReadOnly(closed);
}

function drawStatus() {
  if (current) $("status").textContent = t("session_line", { id: current.session_id, candidate: current.candidate_id });
}

// The timer: counts down to the session's deadline (the server's clock, corrected by the skew
// of the Date header), and submits the code when it ends. The server refuses chat after the
// deadline in any case; this is so the candidate's last code is graded.
function startTimer(s) {
  clearInterval(timer);
  $("timer").hidden = !s.deadline || s.status !== "SESSION_STATUS_ACTIVE";
  if ($("timer").hidden) return;
  const deadline = Date.parse(s.deadline);
  const tick = () => {
    const left = Math.max(0, Math.round((deadline - (Date.now() + clockSkewMs())) / 1000));
    const mm = String(Math.floor(left / 60)).padStart(2, "0"), ss = String(left % 60).padStart(2, "0");
    $("timer").textContent = t("time_left", { t: `${mm}:${ss}` });
    $("timer").classList.toggle("low", left <= 60);
    // Screen readers hear the timer at 5 minutes and 1 minute left (not every second).
    for (const mark of [300, 60]) {
      if (left <= mark && left > mark - 2 && announced !== mark) {
        announced = mark;
        announce(t("time_left", { t: `${mm}:${ss}` }));
      }
    }
    if (left === 0) {
      clearInterval(timer);
      if (current && current.status === "SESSION_STATUS_ACTIVE") timeUp();
    }
  };
  tick();
  timer = setInterval(tick, 250);
}

async function timeUp() {
  $("timer").textContent = t("time_up_closed");
  announce(t("time_up"));
  await submit({ confirmFirst: false });
}

function announce(text) {
  $("announce").textContent = text;
}

async function begin() {
  $("start-error").textContent = "";
  try {
    const body = await api("/api/sessions", {
      method: "POST", headers: { "Content-Type": "application/json", "X-API-Key": $("apikey").value.trim() },
      body: JSON.stringify({ candidate_id: $("candidate").value, problem_id: $("problem").value }),
    });
    session = { id: body.session.session_id, token: body.session_token };
    sessionStorage.setItem("vibe-session", JSON.stringify(session));
    showWorkspace(body.session);
    $("title").focus(); // keyboard and screen-reader users continue at the problem, not at a hidden form
  } catch (e) { $("start-error").textContent = e.message; }
}

async function send() {
  if ($("send").disabled) return; // Ctrl+Enter while a reply streams, or after the end
  const text = $("message").value;
  $("chat-error").textContent = "";
  $("send").disabled = true;
  let bubble = null, body = null, renderer = null, reply = "";
  try {
    await streamEvents(`/api/sessions/${session.id}/chat`, authHeaders(), { message: text }, (name, data) => {
      if (name === "turn_started") {
        addMessage("user", text, data.turn);
        $("message").value = "";
        bubble = addMessage("assistant", "");
        body = bubble.querySelector(".md");
        bubble.setAttribute("aria-busy", "true"); // read out once complete, not chunk by chunk
        renderer = streamingRenderer(body);
      } else if (name === "delta") {
        reply += data.text;
        renderer.update(reply);
        $("chat").scrollTop = $("chat").scrollHeight;
      } else if (name === "completed") {
        renderer.flush();
        bubble.removeAttribute("aria-busy");
        const meta = bubble.querySelector(".meta");
        meta.textContent = t("turn", { n: data.turn })
          + (data.guardrail.violated ? ` · ${t("refused", { reason: data.guardrail.reason })}` : "")
          + (data.leak_cut ? ` · ${t("leak_cut")}` : "");
        if (data.guardrail.violated) bubble.classList.add("refused");
        $("chat").scrollTop = $("chat").scrollHeight;
      }
    });
  } catch (e) {
    $("chat-error").textContent = e.message;
    if (renderer) { renderer.flush(); bubble.removeAttribute("aria-busy"); }
  }
  $("send").disabled = current.status !== "SESSION_STATUS_ACTIVE";
}

// "Run the visible tests": the code against the statement's examples, in the sandbox; never
// graded. The verdicts go to an aria-live region.
async function runTests() {
  $("run").disabled = true;
  $("run-error").textContent = "";
  $("run-status").textContent = t("running");
  try {
    lastRun = await api(`/api/sessions/${session.id}/run`, {
      method: "POST", headers: authHeaders(), body: JSON.stringify({ language: $("language").value, code: editor.value }),
    });
    drawRun();
  } catch (e) {
    $("run-status").textContent = "";
    $("run-error").textContent = e.message;
  }
  $("run").disabled = current.status !== "SESSION_STATUS_ACTIVE";
}

function drawRun() {
  if (!lastRun) return;
  const r = lastRun;
  const tests = r.tests || [];
  const passed = tests.filter((x) => x.verdict === "VERDICT_ACCEPTED").length;
  $("run-status").textContent = t("visible_summary", { passed, total: tests.length, verdict: verdictText(r.verdict) });
  $("run-results").replaceChildren(
    r.compile_output ? el("details", { open: true }, el("summary", { text: t("compile_output") }), el("pre", { text: r.compile_output })) : "",
    el("table", {},
      el("thead", {}, el("tr", {}, ...["test", "verdict", "cpu", "detail"].map((k) => el("th", { scope: "col", text: t(k) })))),
      el("tbody", {}, ...tests.map((x) => el("tr", {},
        el("td", { text: x.test_id }),
        el("td", { class: `verdict ${lower(x.verdict, "VERDICT_")}`, text: verdictText(x.verdict) }),
        el("td", { text: `${fixed(x.cpu_ms, 1)} ms` }),
        el("td", {}, x.detail ? el("pre", { class: "detail", text: x.detail }) : ""))))));
}

async function submit({ confirmFirst = true } = {}) {
  if (submitting) return;
  if (confirmFirst && !confirm(t("submit_confirm"))) return;
  submitting = true;
  $("submit-error").textContent = "";
  setClosed(true);
  try {
    await streamEvents(`/api/sessions/${session.id}/submit`, authHeaders(),
      { language: $("language").value, code: editor.value }, (name, data) => {
        if (name === "progress") $("submit-progress").textContent = t("progress", data);
        else if (name === "report") {
          current.status = "SESSION_STATUS_GRADED";
          clearInterval(timer);
          if (!confirmFirst) $("timer").textContent = t("time_up_closed");
          else $("timer").hidden = true; // submitted in time: no clock left to show
          lastReport = data;
          showReport();
          $("report").scrollIntoView({ behavior: "smooth", block: "start" });
        }
      });
  } catch (e) {
    $("submit-error").textContent = e.message;
    if (!(e instanceof ApiError && e.code === "FAILED_PRECONDITION")) setClosed(false);
  }
  submitting = false;
}

// What the candidate may see depends on VIBE_CANDIDATE_REPORT: everything, the scores only, or
// a receipt until the hiring team releases the report.
function showReport() {
  const r = lastReport;
  if (!r) return;
  const box = $("report");
  if (r.view === "REPORT_VIEW_RECEIPT") {
    box.replaceChildren(el("h2", { text: t("submitted") }), el("p", { text: r.notice }),
      el("p", { class: "meta", text: t("graded_at", { t: r.graded_at || "" }) }),
      el("div", { class: "row" }, el("button", { type: "button", text: t("check_again"), onclick: recheck })));
  } else if (r.view === "REPORT_VIEW_SCORES") {
    box.replaceChildren(el("h2", { text: t("your_result") }), scoresBlock(r), el("p", { class: "meta", text: r.notice }));
  } else {
    box.replaceChildren(el("h2", { text: t("report") }), scoresBlock(r),
      el("h3", { text: t("turns") }), turnsTable(r), guardrailLine(r), ...holisticBlock(r), ...testsTable(r.code));
  }
  box.hidden = false;
}

async function recheck() {
  lastReport = await api(`/api/sessions/${session.id}/report`, { headers: authHeaders() });
  showReport();
}

export async function main() {
  languageSwitcher($("lang"));
  $("begin").addEventListener("click", begin);
  $("send").addEventListener("click", send);
  $("run").addEventListener("click", runTests);
  $("submit").addEventListener("click", () => submit());
  $("message").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(); });
  $("language").addEventListener("change", () => {
    editor.setLanguage($("language").value);
    sessionStorage.setItem(`vibe-code:${session.id}`, JSON.stringify({ language: $("language").value, code: editor.value }));
  });
  onLanguage(() => { drawStatus(); drawStatement(); drawRun(); showReport(); if (editor) editor.setLabel(t("editor_label")); applyStatic(); });

  // A link from the hiring team: #session=<id>&token=<session token> (kept out of the server's logs).
  const link = new URLSearchParams(location.hash.slice(1));
  if (link.get("session") && link.get("token")) {
    session = { id: link.get("session"), token: link.get("token") };
    sessionStorage.setItem("vibe-session", JSON.stringify(session));
    history.replaceState(null, "", location.pathname);
  }
  await loadProblems().catch((e) => { $("start-error").textContent = e.message; });
  if (session) {
    try {
      const s = await api(`/api/sessions/${session.id}`, { headers: authHeaders() });
      showWorkspace(s);
      if (s.status === "SESSION_STATUS_GRADED") {
        lastReport = await api(`/api/sessions/${session.id}/report`, { headers: authHeaders() });
        showReport();
      }
    } catch (e) {
      sessionStorage.removeItem("vibe-session");
      session = null;
      $("start-error").textContent = e.message;
    }
  }
}
