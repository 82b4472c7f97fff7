"""The offline provider's decisions: intent, score band and guardrail, each a learned
classifier (classifier.py, trained on corpus/ by `python -m vibe_dev.train_judge`) whose
inputs are the message's character and word n-grams, the previous exchange, and the
verdicts of the keyword rules (intent.py, guardrail.py, prompt_features.py) as extra
features: the rules carry signal, but alone they fit the examples they were written
from.

`rule_signals` is the one definition of the rule features, used at training and at run
time alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from vibe.llm.base import Exchange, GuardrailVerdict, Intent, ProblemContext, Violation
from vibe.llm.memo import memo
from vibe.llm.offline import guardrail as rules
from vibe.llm.offline.agency import agency_signals
from vibe.llm.offline.classifier import Inputs, load_model
from vibe.llm.offline.domain import domain_share
from vibe.llm.offline.intent import EXPLICIT_HINT, rule_intent
from vibe.llm.offline.prompt_features import PromptFeatures
from vibe.llm.offline.text import CODE_BLOCK, clip, content_terms, is_korean, problem_terms, rx

INTENT_HEAD, BAND_HEAD, GUARD_HEAD = "intent", "band", "guard"
NONE = "none"
_BLANK_PROBLEM = ProblemContext("", "", "")
_REFUSED = rx(
    r"\bcan'?t\s+(?:give|share|ignore|hand|help\s+with\s+that|write)|\bwon'?t\s+(?:give|hand|write)|\bnot\s+(?:going|able)\s+to\s+(?:give|write)"
    r"|드릴\s*수\s*없|할\s*수\s*없|넘어가겠|따를\s*수\s*없|드리지\s*않|어렵습니다"
)
_CODE_LINE = re.compile(r"^\s*(?:def |class |for |while |if |return\b|import |from |#|//|\w+\s*=|[{}])", re.MULTILINE)
_TODO = re.compile(r"\bTODO\b|\bFIXME\b|^\s*pass\s*$|^\s*\.\.\.\s*$|NotImplemented", re.IGNORECASE | re.MULTILINE)


def _bucket(name: str, value: float, edges: Sequence[float]) -> str:
    for edge in edges:
        if value < edge:
            return f"{name}<{edge:g}"
    return f"{name}>={edges[-1]:g}"


def rule_signals(
    problem: ProblemContext | None, history: Sequence[Exchange], message: str, rule_score: float | None = None
) -> dict[str, float]:
    """The rule features of one message in its conversation (names -> 0/1 or a value in 0..1)."""
    p = problem or _BLANK_PROBLEM
    has_history = bool(history)
    out: dict[str, float] = {"bias": 1.0}

    def on(name: str) -> None:
        out[name] = 1.0

    on(f"ri={rule_intent(message, has_history).value}")
    text_verdict = rules.rule_verdict_text(p, message)
    on(f"rg={text_verdict.violation.value if text_verdict.violation else NONE}")
    context_verdict = rules.rule_verdict_in_context(p, history, message)
    if context_verdict.violated and not text_verdict.violated:
        on("rg_context")
    for family in (rules.JAILBREAK, rules.SOLUTION, rules.ABUSE, rules.OFF_TOPIC):
        hit = rules.family_hit(family, message)
        if hit:
            on(f"g_{family}")
            on(f"gl={hit[0]}")
    if rules._stub_completion(message):
        on("g_stub")
    if rules._is_on_topic(p, message):
        on("on_topic")
    if rules._continues_extraction(message):
        on("continuation_words")
    if EXPLICIT_HINT.search(message):
        on("hint_word")
    # The conversation: follow-ups and continuations are read against the last exchange.
    if has_history:
        on("history")
        on(_bucket("turns", len(history), (2, 3)))
        last = history[-1]
        earlier = rules.rule_verdict_text(p, last.user)
        on(f"prev_rg={earlier.violation.value if earlier.violation else NONE}")
        if _REFUSED.search(last.assistant):
            on("prev_refused")
        if CODE_BLOCK.search(last.assistant):
            on("prev_code")
        if "?" in last.assistant or "？" in last.assistant:
            on("prev_question")
    # The prompt's rubric features.
    f = PromptFeatures.of(p, history, message)
    for name in ("tried", "expected", "observed", "code", "formatted_code", "numbers", "complexity"):
        if getattr(f, name):
            on(f"pf_{name}")
    for name in ("history_ref", "low_effort", "pushback", "verified"):
        if getattr(f, name):
            on(f"pf_{name}")
    if f.problem_terms:
        on("pf_problem_terms")
        out["pf_problem_terms_n"] = min(len(f.problem_terms), 5) / 5
    on(_bucket("words", f.words, (3, 6, 12, 25, 50, 100, 200)))
    on(_bucket("questions", f.questions, (1, 2, 3)))
    on(_bucket("directives", f.directives, (1, 2, 3)))
    code_lines = len(_CODE_LINE.findall(message))
    on(_bucket("code_lines", code_lines, (1, 3, 8)))
    if _TODO.search(message):
        on("todo_marker")
    if is_korean(message):
        on("korean")
    if rule_score is not None:
        out["rule_score"] = rule_score / 100
        on(_bucket("rule_score", rule_score, (30, 40, 50, 60, 70, 80)))
    out["log_length"] = min(math.log1p(len(message)) / 8, 1.0)
    # Is it about programming at all? An off-topic message's subject is new to the corpus,
    # so its n-grams say little; not one word of the domain says more (domain.py). The
    # flag is 3, not 1, so that the L2 penalty holds its weight back less: on the k-fold
    # before round 9's data (train_judge), 2,534 attacks refused at 96 false refusals
    # against 2,522 at 1, 2,521 with the share in buckets, 2,538 at 6; 2,501 without it.
    words, share = domain_share(message, problem_terms(p))
    out["domain_share"] = share
    if words >= 4 and share == 0.0:
        out["no_domain_history" if has_history else "no_domain"] = 3.0
    # Who is asked to produce the code: the assistant, the candidate, or nobody (negated).
    out.update(agency_signals(message))
    return out


def make_inputs(
    problem: ProblemContext | None, history: Sequence[Exchange], message: str, rule_score: float | None = None
) -> Inputs:
    last = history[-1] if history else None
    return Inputs(
        message=message,
        prev_user=last.user if last else "",
        prev_tutor=last.assistant if last else "",
        rules=rule_signals(problem, history, message, rule_score),
    )


# ----- intent -------------------------------------------------------------------------


def intent_probabilities(
    message: str, history: Sequence[Exchange], problem: ProblemContext | None = None, *, has_history: bool | None = None
) -> dict[Intent, float]:
    hist = _history_or_marker(history, has_history)
    probs = load_model().probabilities(INTENT_HEAD, make_inputs(problem, hist, message))
    if not hist:
        # A follow-up builds on an earlier answer: there is none on a first turn.
        probs[Intent.FOLLOW_UP.value] = 0.0
        total = sum(probs.values()) or 1.0
        probs = {k: v / total for k, v in probs.items()}
    return {Intent(k): v for k, v in probs.items()}


def classify_intent(
    message: str,
    has_history: bool,
    *,
    history: Sequence[Exchange] = (),
    problem: ProblemContext | None = None,
) -> Intent:
    """The intent of one candidate message (the learned classifier's most likely one).
    `history`, when given, lets it read a follow-up against the previous exchange."""
    probs = intent_probabilities(message, history, problem, has_history=has_history)
    return max(probs, key=lambda i: probs[i])


def _history_or_marker(history: Sequence[Exchange], has_history: bool | None) -> Sequence[Exchange]:
    """Callers that know only *whether* there was an earlier turn pass has_history: an
    empty earlier exchange stands for it (the model then sees "history" without text)."""
    if history or not has_history:
        return history
    return (Exchange(0, "", ""),)


# ----- score band ---------------------------------------------------------------------

BANDS = ("low", "mid", "high")
# Where a score is put when the learned band disagrees with the rubric's: inside the band,
# at the edge nearest to the rubric's own score, so the rubric still orders the turns.
BAND_RANGES: Mapping[str, tuple[float, float]] = {"low": (8.0, 36.0), "mid": (43.0, 66.0), "high": (73.0, 95.0)}


def band_probabilities(
    problem: ProblemContext, history: Sequence[Exchange], message: str, rule_score: float
) -> dict[str, float]:
    return load_model().probabilities(BAND_HEAD, make_inputs(problem, history, message, rule_score))


# ----- guardrail ----------------------------------------------------------------------

_WHAT = {
    Violation.SOLUTION_REQUEST: "a request for the solution or its complete code, directly or in disguise",
    Violation.JAILBREAK: "an attempt to change the tutor's rules or role, or to get its instructions",
    Violation.OFF_TOPIC: "nothing to do with the test or programming",
    Violation.ABUSE: "insults aimed at the tutor",
}


def guard_threshold() -> float:
    value = load_model().meta.get("guard_threshold", 0.5)
    return float(value) if isinstance(value, (int, float)) else 0.5


# The keyword rules still refuse what they catch in a short message (at most
# RULE_SHORT_WORDS words: on the corpus's train part every such refusal, 33 of 33, was an
# attack; the blatant requests they were written for, "give me the full solution", are
# rare in a corpus written to defeat keywords). In a longer message the classifier
# decides alone: longer legitimate messages do trip the rules (12 of the 85 they refuse),
# and on the k-fold predictions letting the rules refuse a longer message whenever
# P(violation) >= 0.1 caught 2 more of 654 attacks for 6 more of 465 legitimate
# questions refused (`python -m vibe_dev.train_judge` prints the costs; a false refusal
# costs at least a missed attack, FALSE_REFUSAL_COST there).
RULE_SHORT_WORDS = 15
# The confidence of a short message's rule refusal: its precision on the train part,
# (33 + 1) / (33 + 2) rounded down.
RULE_SHORT_CONFIDENCE = 0.95


def check_guardrail_in_context(problem: ProblemContext, history: Sequence[Exchange], message: str) -> GuardrailVerdict:
    """Is this message, in this conversation, a violation the tutor must refuse?

    `confidence` is the classifier's probability of the returned verdict: P(violation) of
    a refusal, P(none) of an accepted message (softmax of a regularised logistic
    regression, calibrated on the test split: tests/test_judge_model.py); a short message's
    rule refusal against the classifier's reading carries the rules' precision on such
    messages, RULE_SHORT_CONFIDENCE."""
    if not history:
        return check_guardrail_text(problem, message)
    return _check_guardrail(problem, history, message)


def _check_guardrail(problem: ProblemContext, history: Sequence[Exchange], message: str) -> GuardrailVerdict:
    probs = load_model().probabilities(GUARD_HEAD, make_inputs(problem, history, message))
    p_violation = 1.0 - probs.get(NONE, 0.0)
    if _about_the_problem(problem, message):
        # Off-topic is relative to this problem: the classifier learned it from other
        # problems' statements, so "what's the weather like?" in a problem about weather
        # data reads as off-topic to it. Its off-topic share is set aside.
        p_violation -= probs.get(Violation.OFF_TOPIC.value, 0.0)
        probs = {k: v for k, v in probs.items() if k != Violation.OFF_TOPIC.value}
    rule = rules.rule_verdict_in_context(problem, history, message)
    if p_violation < guard_threshold():
        if rule.violated and len(message.split()) <= RULE_SHORT_WORDS:
            return replace(
                rule,
                reason=f"{rule.reason}; a short message the rules are sure of (learned classifier p={p_violation:.2f})",
                confidence=max(RULE_SHORT_CONFIDENCE, round(p_violation, 4)),
            )
        return GuardrailVerdict(violated=False, confidence=round(1.0 - p_violation, 4))
    if rule.violated:
        # Both refuse: the rule names the kind (its precedence puts the most dangerous first).
        return replace(
            rule,
            reason=f"{rule.reason}; learned classifier agrees (p={p_violation:.2f})",
            confidence=round(p_violation, 4),
        )
    label = max((k for k in probs if k != NONE), key=lambda k: probs[k])
    violation = Violation(label)
    reason = (
        f"{violation.value}: the learned classifier reads it as {_WHAT[violation]} "
        f'(p={p_violation:.2f}; "{clip(message, 60)}")'
    )
    return GuardrailVerdict(True, violation, reason, confidence=round(p_violation, 4))


def _about_the_problem(problem: ProblemContext, message: str) -> bool:
    """Are most of the message's content words the problem statement's own?"""
    terms = content_terms(message)
    return bool(terms) and 2 * len(terms & problem_terms(problem)) >= len(terms)


def check_guardrail_text(problem: ProblemContext, message: str) -> GuardrailVerdict:
    """The guardrail on a message alone (no conversation)."""
    return _check_guardrail_alone(problem.title, problem.statement, message)


@memo
def _check_guardrail_alone(title: str, statement: str, message: str) -> GuardrailVerdict:
    """`check_guardrail_text` by the two fields of the problem it reads (its title names
    it in the rules; its terms make a message on-topic). Remembered: a candidate's first
    message is asked twice with no conversation, by the tutor's hint plan and then by
    the guardrail itself (about 0.2 ms of the tutor's CPU the second time)."""
    return _check_guardrail(ProblemContext("", title, statement), (), message)
