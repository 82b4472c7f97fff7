"""The offline per-turn judge: the intent, and rubric scores from features of the
prompt a reviewer can check (holistic_judge.py reads the sequence of judged turns)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vibe.llm.base import (
    DISCERNMENT,
    Exchange,
    GuardrailVerdict,
    Intent,
    ProblemContext,
    RubricScore,
    TurnJudgement,
)
from vibe.llm.offline.intent import FOLLOW_UP, classify_intent
from vibe.llm.offline.text import (
    CODE_BLOCK,
    HANGUL_CHAR,
    contains_code,
    content_terms,
    leaks_reference,
    problem_terms,
    prose,
    rx,
    summarize_answer,
    summarize_prompt,
)
from vibe.llm.rubrics import rubric_for, weighted_score

_TRIED = rx(
    r"\b(?:i\s+(?:tried|wrote|used|use|loop|check|store|iterate|keep|sort|implemented|did|added|changed|have|am\s+using)|i'?ve\s+tried|tried|attempted|"
    r"my\s+(?:code|approach|solution|implementation|attempt|loop|function|version)|currently|so\s+far|here\s+is\s+my|here'?s\s+my)\b"
    r"|해\s*봤|해봤|시도|작성했|짰는데|구현했|내\s*코드|제\s*코드|지금\s*코드|사용했|썼는데"
)
_EXPECTED = rx(
    r"\b(?:expected|expect(?:ing)?|should\s+(?:be|return|print|output|give)|supposed\s+to|want(?:ed)?\s+(?:it\s+)?to|goal)\b"
    r"|기대|예상|나와야|되어야|나올\s*줄|원하는"
)
_OBSERVED = rx(
    r"\b(?:got|get|gets|gives?|returns?|returned|prints?|printed|outputs?|instead|actual(?:ly)?|but\s+it|raises?|throws?)\b|\w+Error\b"
    r"|나와|나오|출력|반환|떠요|뜹니다|결과가|대신|발생"
)
_CODE_LIKE = re.compile(
    r"```|`[^`\n]+`|\b[a-z]+_[a-z0-9_]+\b|\b[a-z]+[A-Z]\w*\b|\w+\([^)]*\)|\[[^\]]*\d[^\]]*\]|"
    r"^\s*(?:def|for|while|if|return|class|import)\b|\w\s*(?:==|!=|<=|>=|\+=|-=)\s*\w",
    re.MULTILINE,
)
_NUMBERS = rx(
    r"\d|\b(?:constraints?|limit|size|length|large|million|thousand|bounds?)\b|\bn\s*(?:<=|<|≤|=)|10\^\d|\b1e\d"
    r"|제약|크기|길이|최대|이하|이상|백만"
)
_COMPLEXITY = rx(r"\bO\([^)]*\)|\b(?:complexity|linear|quadratic|log\s*n)\b|복잡도")
_HISTORY_REF = rx(
    r"\b(?:you\s+(?:said|mentioned|suggested)|your\s+(?:previous|last|earlier)|earlier|previous|last\s+(?:hint|answer|reply)|"
    r"that\s+hint|the\s+hint|based\s+on|as\s+you|following)\b|아까|방금|이전|그\s*힌트|말씀하신|말한|그럼|그러면"
)
# Low-effort turns that hand the work to the AI instead of moving it forward.
LOW_EFFORT = rx(
    r"^\s*(?:next\s+hint|another\s+hint|more\s+hints?|hint|help|help\s+me|continue|go\s+on|more|next|idk|"
    r"i\s+don'?t\s+know|\?+|ok|okay|what|다음\s*힌트|힌트\s*더|힌트|도와줘|몰라|모르겠어|계속)\s*(?:please|pls|좀|요)?\s*[.!?]*\s*$"
    r"|\bjust\s+(?:tell|give|show)\s+me\b|그냥\s*알려"
)
# Discernment: doubt of or push-back on a claim ("are you sure", "but that fails for").
PUSHBACK = rx(
    r"\b(?:are\s+you\s+sure|is\s+that\s+(?:really|right|true|correct)|really\s+O\(|why\s+(?:is|would|does)\s+(?:that|this|it)|"
    r"(?:but|however)\s+(?:that|this|it|your|then)\b|doesn'?t\s+that|wouldn'?t\s+(?:that|it|this)|isn'?t\s+(?:that|it|this)|"
    r"(?:that|this|it)\s+(?:fails|breaks|is\s+wrong|can'?t\s+be|would\s+(?:fail|break|miss))|i\s+(?:don'?t\s+think|doubt|disagree)|"
    r"counter-?example|contradict\w*|not\s+(?:convinced|sure\s+(?:that|it))|what\s+if\b|(?:but|however),?\s+(?:with|for|on|when|if)\b|"
    r"wouldn'?t\b.{0,60}\b(?:break|fail|overflow|miss|time\s+out|exceed)|is\s+that\s+right)"
    r"|정말|맞(?:나요|아요\?|아\?|는\s*지|는지)|확실|근데|하지만|그런데|아닌가|아니지\s*않|반례|틀린\s*것\s*같|이상한데|모순"
)
# Discernment: the candidate checked something themselves (ran it, traced it, tested it).
VERIFIED = rx(
    r"\b(?:i\s+(?:checked|tested|ran|traced|verified|tried\s+it|measured|timed|printed)|when\s+i\s+(?:ran|run|test(?:ed)?|traced)|ran\s+(?:it|this|that|my)|"
    r"(?:verify|check|confirm)\s+(?:that|whether|if|it|this|your)|by\s+hand|step\s+by\s+step\s+on)\b"
    r"|확인해\s*(?:봤|보니|보았)|돌려\s*(?:봤|보니)|테스트\s*해\s*(?:봤|보니)|직접\s*(?:해|돌려|계산)|손으로|검증|확인\s*(?:해|하고)\s*(?:싶|줘)"
)

_DIRECTIVE = rx(
    r"\b(?:only|never|always|don'?t|do\s+not|instead|first|before|unless|when\s+i)\b"
    r"|만\s|말고|하지\s*마|주지\s*마|고치지\s*말|항상|먼저|대신|짚어|로만|으로만|한국어로|영어로"
)


@dataclass(frozen=True)
class PromptFeatures:
    """What the rubric looks at in one prompt."""

    words: float  # word count; a Korean eojeol counts 1.5 (it carries more than an English word)
    questions: int
    tried: bool
    expected: bool
    observed: bool
    code: bool
    formatted_code: bool  # in backticks / a code block
    numbers: bool
    complexity: bool
    problem_terms: tuple[str, ...]
    history_ref: bool
    low_effort: bool
    pushback: bool
    verified: bool
    directives: int  # "only ...", "never ...", "don't ...", "first ...": instructions to the AI

    @classmethod
    def of(cls, problem: ProblemContext, history: Sequence[Exchange], message: str) -> PromptFeatures:
        tokens = message.split()
        words = sum(1.5 if HANGUL_CHAR.search(t) else 1.0 for t in tokens)
        questions = len(re.findall(r"[?？]", prose(message)))
        return cls(
            words=words,
            questions=questions,
            tried=bool(_TRIED.search(message)),
            expected=bool(_EXPECTED.search(message)),
            observed=bool(_OBSERVED.search(message)),
            code=bool(_CODE_LIKE.search(message)),
            formatted_code=contains_code(message),
            numbers=bool(_NUMBERS.search(message)),
            complexity=bool(_COMPLEXITY.search(message)),
            problem_terms=tuple(sorted(content_terms(message) & problem_terms(problem))),
            history_ref=bool(history) and bool(_HISTORY_REF.search(message) or FOLLOW_UP.search(message)),
            low_effort=bool(LOW_EFFORT.search(message)),
            pushback=bool(PUSHBACK.search(prose(message))),
            verified=bool(VERIFIED.search(message)),
            directives=len(_DIRECTIVE.findall(message)),
        )


def clamp(value: float) -> float:
    return float(max(0.0, min(100.0, round(value, 2))))


def _score_clarity(f: PromptFeatures, intent: Intent) -> tuple[float, str]:
    if f.words < 3:
        score, why = 15.0, f"only {f.words:g} word(s): too short to say what is needed"
    elif f.words < 6:
        score, why = 40.0, f"short ({f.words:g} words), the request is only partly clear"
    elif f.words <= 80:
        score, why = 75.0, f"a readable {f.words:g}-word request"
    elif f.words <= 200:
        score, why = 62.0, f"long ({f.words:g} words), the main ask takes effort to find"
    else:
        score, why = 45.0, f"very long ({f.words:g} words), rambling"
    notes = [why]
    if f.questions == 1:
        score += 10
        notes.append("one focused question")
    elif f.questions >= 3:
        score -= min(20, 10 * (f.questions - 2))
        notes.append(f"{f.questions} questions at once")
    if f.formatted_code:
        score += 10
        notes.append("code set apart in backticks")
    return score, "; ".join(notes)


# What a complete request of each intent states (rubrics.py says it in words).
def _completeness_elements(f: PromptFeatures, intent: Intent) -> dict[str, bool]:
    if intent is Intent.GENERATION:
        return {
            "the piece of code wanted, named": f.code or bool(f.problem_terms),
            "inputs or outputs": f.expected or f.observed or bool(f.problem_terms),
            "constraints or sizes": f.numbers or f.complexity,
            "an example or signature": f.code,
        }
    if intent is Intent.OPTIMIZATION:
        return {
            "the current approach": f.tried or f.code,
            "its complexity": f.complexity,
            "the limit to meet": f.numbers,
            "what should improve": f.expected or f.observed or f.complexity,
        }
    if intent is Intent.TEST_CASE:
        return {
            "what is tested": f.code or bool(f.problem_terms),
            "concrete inputs": f.numbers or f.code,
            "expected outputs": f.expected or f.observed,
            "what was already tested or tried": f.tried or f.verified,
        }
    if intent is Intent.HINT_QUERY:
        return {
            "what is understood or tried": f.tried or f.history_ref or f.complexity,
            "where exactly it gets stuck": f.questions >= 1 and f.words >= 6,
            "the problem's terms": bool(f.problem_terms),
            "a concrete example": f.code or f.numbers,
        }
    return {  # debugging, and the default
        "what was tried": f.tried,
        "the expected result": f.expected,
        "what was observed": f.observed,
        "code or a concrete example": f.code,
    }


def _score_completeness(f: PromptFeatures, intent: Intent) -> tuple[float, str]:
    elements = _completeness_elements(f, intent)
    present = [name for name, ok in elements.items() if ok]
    missing = [name for name, ok in elements.items() if not ok]
    score = 20.0 + 20.0 * len(present)
    if f.words < 4:
        score = min(score, 15.0)
    reason = f"states {', '.join(present)}" if present else f"states none of: {', '.join(elements)}"
    if present and missing:
        reason += f"; missing {', '.join(missing)}"
    return score, reason


def _score_specificity(f: PromptFeatures, intent: Intent) -> tuple[float, str]:
    score = 20.0
    notes: list[str] = []
    if f.code:
        score += 30
        notes.append("names code/identifiers or a concrete input")
    if f.numbers:
        score += 25
        notes.append("gives numbers or constraints")
    if f.complexity:
        score += 15
        notes.append("talks about complexity")
    if f.problem_terms:
        score += 10
        notes.append("uses the problem's terms")
    if intent is Intent.RULE_SETTING:
        # A rule is specific through the directives it gives (do / never / only / first),
        # not through numbers.
        score += min(3, f.directives) * 20
        if f.directives:
            notes.append(f"{f.directives} directive(s) for the AI")
    if f.words < 3:
        score = min(score, 10.0)
        notes.append("too short to be specific")
    return score, "; ".join(notes) or "generic wording, no code, numbers or constraints"


def _score_context(f: PromptFeatures, intent: Intent, has_history: bool) -> tuple[float, str]:
    score = 15.0
    notes: list[str] = []
    if f.problem_terms:
        score += min(45, 15 * len(f.problem_terms))
        notes.append(f"refers to the problem ({', '.join(f.problem_terms[:4])})")
    else:
        notes.append("no reference to the problem's own terms")
    if f.history_ref:
        score += 25 if intent is not Intent.FOLLOW_UP else 35
        notes.append("builds on an earlier turn")
    elif has_history:
        notes.append("does not refer to earlier turns")
    if f.code:
        score += 15
        notes.append("includes their own code")
    if f.words < 4:
        score = min(score, 30.0)
        notes.append("too short to carry the context")
    return score, "; ".join(notes)


def _score_efficiency(f: PromptFeatures, intent: Intent) -> tuple[float, str]:
    if f.low_effort:
        return 15.0, 'a low-effort request ("next hint" / "just tell me") that hands the work to the AI'
    if f.words < 3:
        return 20.0, "too short to move the work forward"
    score = 60.0
    notes: list[str] = []
    if f.questions <= 1:
        score += 15
        notes.append("one focused request")
    elif f.questions >= 3:
        score -= 20
        notes.append(f"{f.questions} questions in one turn dilute the focus")
    if f.tried or f.code:
        score += 15
        notes.append("shows their own work so the answer can move it forward")
    if f.words > 200:
        score -= 15
        notes.append("much more text than the request needs")
    return score, "; ".join(notes) or "a workable request"


def _score_discernment(f: PromptFeatures, intent: Intent, has_history: bool) -> tuple[float, str]:
    if not has_history and not (f.pushback or f.verified):
        # The AI has said nothing yet: nothing to check, so neither credit nor blame.
        return 50.0, "first turn: no AI answer to check yet (neutral)"
    score = 10.0
    notes: list[str] = []
    if f.pushback:
        # Doubting a claim the AI made counts fully; doubting in general, before the AI said anything, half.
        score += 40 if has_history else 20
        notes.append("questions or pushes back on a claim")
    if f.verified:
        score += 25
        notes.append("checked it themselves (ran, traced or tested it)")
    if intent is Intent.TEST_CASE and (f.code or f.numbers):
        score += 30
        notes.append("proposes concrete tests to check the code")
    if f.history_ref:
        score += 15
        notes.append("refers to what the AI said")
        if f.code or f.numbers:
            score += 10
            notes.append("tries the earlier answer on a concrete case")
    if not notes:
        return score, "takes what the AI says on trust: no check, test or push-back"
    return score, "; ".join(notes)


def score_criterion(criterion: str, f: PromptFeatures, intent: Intent, has_history: bool) -> tuple[float, str]:
    """(score 0..100, reason) of one rubric criterion for a prompt of this intent."""
    if criterion == "clarity":
        score, why = _score_clarity(f, intent)
    elif criterion == "completeness":
        score, why = _score_completeness(f, intent)
    elif criterion == "specificity":
        score, why = _score_specificity(f, intent)
    elif criterion == "context":
        score, why = _score_context(f, intent, has_history)
    elif criterion == "efficiency":
        score, why = _score_efficiency(f, intent)
    elif criterion == DISCERNMENT:
        score, why = _score_discernment(f, intent, has_history)
    else:
        raise ValueError(f"no offline scorer for criterion {criterion!r}")
    return clamp(score), why


_REFUSAL_MARKERS = rx(
    r"\bcan'?t\s+(?:give|share|ignore|hand|help\s+with\s+that)|\bwon'?t\s+(?:give|hand)|드릴\s*수\s*없|할\s*수\s*없|넘어가겠|따를\s*수\s*없"
)


def _describe_answer(problem: ProblemContext, answer: str) -> str:
    actions: list[str] = []
    if _REFUSAL_MARKERS.search(answer):
        actions.append("gave an educational refusal")
    if "?" in answer or "？" in answer:
        actions.append("asked a guiding question")
    hints_given = [i + 1 for i, h in enumerate(problem.hints) if h.strip() and h.strip() in answer]
    if hints_given:
        actions.append(f"gave hint {', '.join(map(str, hints_given))}")
    if not actions:
        actions.append("explained without asking a question" if answer.strip() else "gave no reply")
    sentence = "The tutor " + (", ".join(actions[:-1]) + " and " + actions[-1] if len(actions) > 1 else actions[0])
    if leaks_reference(problem, answer):
        return sentence + " but leaked part of the reference solution."
    has_code = bool(CODE_BLOCK.search(answer))
    return sentence + (" with a code block." if has_code else " without code.")


def judge_turn(
    problem: ProblemContext, history: Sequence[Exchange], exchange: Exchange, guardrail: GuardrailVerdict
) -> TurnJudgement:
    has_history = bool(history)
    intent = classify_intent(exchange.user, has_history)
    prompt_summary = summarize_prompt(exchange.user)
    answer_summary = summarize_answer(exchange.assistant)
    answer_reasoning = _describe_answer(problem, exchange.assistant)
    rubric = rubric_for(intent)
    if guardrail.violated:
        kind = guardrail.violation.value if guardrail.violation else "unknown"
        why = f"scored 0: the turn violated the guardrail ({kind}: {guardrail.reason or 'no detail'})"
        return TurnJudgement(
            intent=intent,
            score=0.0,
            rubrics=tuple(RubricScore(c.name, 0.0, why, c.weight) for c in rubric.criteria),
            final_reasoning=f"Intent {intent.value}; the turn violated the guardrail ({kind}) and is scored 0 as the design requires.",
            user_prompt_summary=prompt_summary,
            llm_answer_summary=answer_summary,
            llm_answer_reasoning=answer_reasoning,
        )
    f = PromptFeatures.of(problem, history, exchange.user)
    rubrics = tuple(
        RubricScore(c.name, *score_criterion(c.name, f, intent, has_history), c.weight) for c in rubric.criteria
    )
    score = weighted_score(rubrics)
    best = max(rubrics, key=lambda r: r.score)
    worst = min(rubrics, key=lambda r: r.score)
    final = (
        f"Intent {intent.value}, score {score:g} (weighted): strongest {best.criterion} ({best.score:g}, {best.reason}); "
        f"weakest {worst.criterion} ({worst.score:g}, {worst.reason})."
    )
    return TurnJudgement(
        intent=intent,
        score=score,
        rubrics=rubrics,
        final_reasoning=final,
        user_prompt_summary=prompt_summary,
        llm_answer_summary=answer_summary,
        llm_answer_reasoning=answer_reasoning,
    )
