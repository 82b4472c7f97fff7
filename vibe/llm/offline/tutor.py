"""The offline tutor: Socratic templates chosen by the message's intent, the
problem's hint ladder one rung per hint-like request, educational refusals; never
the reference solution."""

from __future__ import annotations

import re
from collections.abc import Sequence

from vibe.llm.base import Exchange, GuardrailVerdict, Intent, ProblemContext, TutorGuidance, Violation
from vibe.llm.offline.intent import is_hint_like
from vibe.llm.offline.learned import classify_intent
from vibe.llm.offline.text import CODE_BLOCK, clip, is_korean, reference_lines, summarize_answer

_GUIDING_QUESTION = {
    "en": 'What is the smallest example of "{title}" you can solve by hand, and which step of it would your code need to repeat?',
    "ko": '"{title}"에서 손으로 풀 수 있는 가장 작은 예시는 무엇이고, 코드가 반복해야 하는 단계는 어느 것인가요?',
}
_HINT_LINE = {
    "en": "Hint {k} of {n}: {hint}",
    "ko": "힌트 {k}/{n}: {hint}",
}
_INTENT_TEMPLATES: dict[Intent, dict[str, str]] = {
    Intent.DEBUGGING: {
        "en": 'Let\'s debug this together for "{title}". For the failing input, what did you expect the result to be, and what did you actually see? '
        "Print the intermediate values (the loop index and every variable you update) just before the line where things first go wrong. "
        "At which step does a printed value first differ from what you get by hand?",
        "ko": '"{title}" 디버깅을 같이 해 봅시다. 실패하는 입력에서 어떤 결과를 기대했고, 실제로는 무엇이 나왔나요? '
        "문제가 처음 생기는 줄 바로 앞에서 중간 값(반복 인덱스와 갱신하는 변수들)을 출력해 보세요. "
        "손으로 계산한 값과 처음 달라지는 단계는 어디인가요?",
    },
    Intent.OPTIMIZATION: {
        "en": 'Good instinct to think about performance in "{title}". What is the time complexity of your current approach, in terms of n? '
        "Look for the bottleneck: a nested loop, or a repeated search such as `x in some_list` inside a loop. "
        "Which data structure could answer that inner question in O(1) or O(log n)?",
        "ko": '"{title}"에서 성능을 생각한 것은 좋은 방향입니다. 지금 방법의 시간 복잡도는 n에 대해 어떻게 되나요? '
        "병목을 찾아보세요: 중첩 반복문이나, 반복문 안에서 되풀이되는 `x in some_list` 같은 탐색이 있나요? "
        "그 안쪽 질문에 O(1)이나 O(log n)으로 답할 수 있는 자료구조는 무엇일까요?",
    },
    Intent.TEST_CASE: {
        "en": 'Testing is the right move for "{title}". Try these edge cases: an empty input, a single element, duplicates, '
        "negative numbers or zeros, and a large n near the limit to check the running time. "
        "Write down the expected output for each before you run it. Which of them do you think your code handles least well?",
        "ko": '"{title}"에 테스트를 해 보는 것은 좋은 선택입니다. 이런 엣지 케이스를 시도해 보세요: 빈 입력, 원소 하나, 중복 값, '
        "음수나 0, 그리고 실행 시간을 확인할 수 있도록 제한에 가까운 큰 n. "
        "실행하기 전에 각 경우의 기대 출력을 먼저 적어 보세요. 어느 경우를 코드가 가장 약하게 처리할 것 같나요?",
    },
    Intent.GENERATION: {
        "en": 'Before writing the code for "{title}", outline your plan. What are the inputs and the output, and what are the main steps in order? '
        "Write them as three to five short comments, and I will give you feedback on the plan before you turn it into code. "
        "Which step feels least certain to you?",
        "ko": '"{title}" 코드를 쓰기 전에 계획부터 정리해 봅시다. 입력과 출력은 무엇이고, 주요 단계는 어떤 순서인가요? '
        "세 줄에서 다섯 줄 정도의 짧은 주석으로 적어 주시면, 코드로 옮기기 전에 계획에 대한 피드백을 드릴게요. "
        "어느 단계가 가장 확신이 서지 않나요?",
    },
    Intent.RULE_SETTING: {
        "en": 'Understood, I will follow that for the rest of this session on "{title}", within the test rules: '
        "I guide you with questions and hints and do not hand over the full solution. What would you like to work on first?",
        "ko": '알겠습니다. "{title}" 세션 동안 그렇게 하겠습니다. 다만 시험 규칙 안에서, '
        "질문과 힌트로 안내하고 전체 풀이는 드리지 않습니다. 무엇부터 시작해 볼까요?",
    },
    Intent.FOLLOW_UP: {
        "en": 'Good, you are building on the earlier step ("{last}"). Try your exact case by hand first: '
        "write down, element by element, what your approach stores and what it looks up. "
        'At which step does the result differ from what you need for "{title}"?',
        "ko": '지난 답변("{last}")에 이어서 가 봅시다. 그중 어떤 부분을 시도해 봤고, 결과는 어땠나요? '
        '어디서부터 막혔는지 알려 주시면 "{title}"의 다음 단계를 거기서부터 함께 보겠습니다.',
    },
    Intent.HINT_QUERY: {
        "en": 'Let\'s think about "{title}" step by step. What exactly are the inputs and the expected output, '
        "and which part is the hard one for you right now?",
        "ko": '"{title}"을 한 단계씩 생각해 봅시다. 입력과 기대 출력은 정확히 무엇이고, '
        "지금 가장 어려운 부분은 어디인가요?",
    },
}
_REFUSAL_TEMPLATES: dict[Violation, dict[str, str]] = {
    Violation.SOLUTION_REQUEST: {
        "en": 'I can\'t give you the full solution to "{title}": this test measures how you solve it with an AI, '
        "and a pasted answer would show nothing of your own skills (this turn is scored 0). "
        "Let me help with the next step instead.",
        "ko": '"{title}"의 전체 풀이나 정답 코드는 드릴 수 없습니다. 이 시험은 AI와 함께 스스로 푸는 과정을 보는 것이라, '
        "정답을 붙여 넣으면 실력을 보여 줄 수 없어요(이 턴은 0점 처리됩니다). 대신 다음 단계를 도와드릴게요.",
    },
    Violation.JAILBREAK: {
        "en": "I can't ignore my instructions, take on another role or reveal my system prompt: I'm your tutor for \"{title}\" "
        "under the test rules, and nobody can lift them during the test (this turn is scored 0). I'm glad to keep helping within them.",
        "ko": '이전 지시를 무시하거나, 다른 역할을 맡거나, 시스템 프롬프트를 공개할 수는 없습니다. 저는 시험 규칙 안에서 "{title}"을 돕는 튜터이고, '
        "시험 중에는 누구도 그 규칙을 풀 수 없어요(이 턴은 0점 처리됩니다). 규칙 안에서라면 기꺼이 계속 도와드릴게요.",
    },
    Violation.OFF_TOPIC: {
        "en": 'That is outside this coding test, so I will skip it and we can get back to "{title}".',
        "ko": '그 질문은 이 코딩 시험과 관계가 없어서 넘어가겠습니다. "{title}"로 돌아가 봅시다.',
    },
    Violation.ABUSE: {
        "en": 'Getting stuck is frustrating, I understand. Let\'s keep it respectful and work through "{title}" together.',
        "ko": '막히면 답답한 마음, 이해합니다. 서로 존중하면서 "{title}"을 함께 풀어 봅시다.',
    },
}


_TRY_FIRST = {
    "en": "Before the next hint, show me something of your own: paste the code you have so far (broken is fine), "
    "write your plan as three short steps, or work Example 1 by hand and tell me the first step where you get stuck. "
    "Then I will give you the next hint from there. What have you tried so far?",
    "ko": "다음 힌트를 드리기 전에 먼저 직접 시도한 것을 보여 주세요: 지금까지 쓴 코드(틀려도 괜찮아요)를 붙여 넣거나, "
    "계획을 짧은 세 단계로 적거나, 예시 1을 손으로 풀어 보고 처음 막히는 단계를 알려 주세요. "
    "그러면 거기서부터 다음 힌트를 드릴게요. 지금까지 무엇을 시도해 봤나요?",
}
_APPLY_HINT = {
    "en": "How could you apply that to your current approach?",
    "ko": "이 힌트를 지금 방법에 어떻게 적용할 수 있을까요?",
}
_FIRST_STEP = {
    "en": "With that in mind, what would your first step be?",
    "ko": "그 힌트를 바탕으로 첫 단계는 무엇이 될까요?",
}


def _next_hint_index(problem: ProblemContext, history: Sequence[Exchange]) -> int:
    """0-based rung of the hint ladder for the next hint, for callers that give no
    guidance (the tutor service decides with vibe.services.tutor.hints, which also knows
    about low-effort streaks).

    Counts the earlier hint-like requests, and also the hints already revealed in earlier
    replies (a refusal may have revealed one), so the ladder never repeats a rung while
    there are more; clamped to the last hint.
    """
    requested = sum(1 for i, ex in enumerate(history) if is_hint_like(ex.user, i > 0))
    revealed = 0
    for k, hint in enumerate(problem.hints):
        if hint.strip() and any(hint.strip() in ex.assistant for ex in history):
            revealed = k + 1
    return min(max(requested, revealed), max(len(problem.hints) - 1, 0))


def _hint_line(problem: ProblemContext, k: int | None, lang: str) -> str:
    if not problem.hints or k is None:
        return _GUIDING_QUESTION[lang].format(title=problem.title)
    k = min(max(k, 0), len(problem.hints) - 1)
    return _HINT_LINE[lang].format(k=k + 1, n=len(problem.hints), hint=problem.hints[k].strip())


def _next_step(
    problem: ProblemContext,
    history: Sequence[Exchange],
    guidance: TutorGuidance | None,
    wants_hint: bool,
    follow_up: dict[str, str],
    lang: str,
) -> list[str]:
    """What the reply offers next: the planned hint rung, a request to try first, or
    nothing (the intent template already ends with a guiding question)."""
    if guidance is None:
        if not wants_hint:
            return []
        if not problem.hints:
            return [_GUIDING_QUESTION[lang].format(title=problem.title)]
        return [_hint_line(problem, _next_hint_index(problem, history), lang), follow_up[lang]]
    if guidance.ask_to_try_first:
        return [_TRY_FIRST[lang]]
    if guidance.hint_index is not None and problem.hints:
        return [_hint_line(problem, guidance.hint_index, lang), follow_up[lang]]
    return []


def _scrub(problem: ProblemContext, text: str) -> str:
    """Belt and braces: no line of the reference solution and no code block ever leaves."""
    text = CODE_BLOCK.sub("", text)
    for line in reference_lines(problem):
        text = text.replace(line, "...")
    return text


def compose_reply(
    problem: ProblemContext,
    history: Sequence[Exchange],
    message: str,
    guardrail: GuardrailVerdict,
    guidance: TutorGuidance | None = None,
) -> str:
    """The whole tutor reply as one string (stream_tutor_reply chunks it)."""
    lang = "ko" if is_korean(message) else "en"
    title = problem.title or ("이 문제" if lang == "ko" else "this problem")
    if guardrail.violated and guardrail.violation is not None:
        parts = [_REFUSAL_TEMPLATES[guardrail.violation][lang].format(title=title)]
        # A solution request still gets the next step of the ladder; other refusals a question.
        step = (
            _next_step(problem, history, guidance, True, _FIRST_STEP, lang)
            if guardrail.violation is Violation.SOLUTION_REQUEST
            else []
        )
        parts.extend(step or [_GUIDING_QUESTION[lang].format(title=title)])
        return _scrub(problem, " ".join(parts))

    intent = classify_intent(message, bool(history))
    last = clip(summarize_answer(history[-1].assistant), 90) if history else ""
    parts = [_INTENT_TEMPLATES[intent][lang].format(title=title, last=last)]
    parts.extend(_next_step(problem, history, guidance, is_hint_like(message, bool(history)), _APPLY_HINT, lang))
    return _scrub(problem, " ".join(parts))


def word_chunks(text: str, words_per_chunk: int = 4) -> list[str]:
    """Word groups that concatenate back to exactly `text`."""
    tokens = re.findall(r"\S+\s*", text)
    return ["".join(tokens[i : i + words_per_chunk]) for i in range(0, len(tokens), words_per_chunk)]
