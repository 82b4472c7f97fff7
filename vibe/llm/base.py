"""The one interface every LLM provider implements, and the plain data it speaks.

Services depend on `LLMProvider` only; `offline` (deterministic heuristics) and
`gemini` (google-genai) are interchangeable behind it. The types here are plain
dataclasses so that providers never see protobuf or database rows.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class Intent(enum.StrEnum):
    """The 7 turn intents of docs/DESIGN.md §2 (per-turn evaluation, node 4.0)."""

    GENERATION = "generation"  # write code
    OPTIMIZATION = "optimization"
    DEBUGGING = "debugging"
    TEST_CASE = "test_case"
    HINT_QUERY = "hint_query"  # ask for a hint or an explanation
    RULE_SETTING = "rule_setting"  # set constraints/rules for the AI
    FOLLOW_UP = "follow_up"  # build on an earlier answer


class Violation(enum.StrEnum):
    SOLUTION_REQUEST = "solution_request"  # asks for the whole solution / final code
    JAILBREAK = "jailbreak"  # role-play, "ignore previous instructions", prompt extraction
    OFF_TOPIC = "off_topic"
    ABUSE = "abuse"


# The general prompt-quality criteria a turn is scored on (0..100 each).
CRITERIA: tuple[str, ...] = ("clarity", "completeness", "specificity", "context", "efficiency")
# Does the candidate check, test or push back on what the AI said? Scored for the
# intents where it applies (vibe/llm/rubrics.py has each intent's criteria and weights).
DISCERNMENT = "discernment"
RUBRIC_CRITERIA: tuple[str, ...] = (*CRITERIA, DISCERNMENT)
# The criteria of the holistic (whole conversation) evaluation.
HOLISTIC_CRITERIA: tuple[str, ...] = (
    "problem_decomposition",
    "feedback_integration",
    "strategy_coherence",
    "verification_of_ai_output",
    "iteration_efficiency",
)


@dataclass(frozen=True)
class GuardrailVerdict:
    violated: bool
    violation: Violation | None = None
    reason: str = ""
    # How sure the deciding classifier is of this verdict, 0..1. The offline classifier's
    # calibrated probability; a model's verdict is 1.0. Lets a caller ask the model only
    # when the offline classifier is unsure (issue 16: about one LLM request per chat turn).
    confidence: float = 1.0

    @classmethod
    def ok(cls) -> GuardrailVerdict:
        return cls(violated=False)


@dataclass(frozen=True)
class ProblemContext:
    """What the tutor and the judge know about the problem being solved.

    `statement` includes the constraints; `input_format`/`output_format` come from the
    spec. `reference_solution` and `reference_solutions` (language -> source) are never
    put into a prompt; they are here so that output checks (the tutor's leak check) can
    compare against them. `starter_code` is what the candidate is given anyway.
    """

    problem_id: str
    title: str
    statement: str
    hints: Sequence[str] = ()
    reference_solution: str = ""
    input_format: str = ""
    output_format: str = ""
    starter_code: str = ""
    reference_solutions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TutorGuidance:
    """What the tutor core decided for one reply from the whole conversation, so the
    hint ladder and the memory behave the same whichever provider writes the reply.

    None for a provider means "decide from the history you were given"."""

    hint_index: int | None = None  # rung of the problem's hint ladder to reveal now (0-based); None = no new hint
    ask_to_try_first: bool = False  # several low-effort requests in a row: ask for an attempt first
    memory_summary: str = ""  # summary of the turns older than the history sent along


@dataclass(frozen=True)
class Exchange:
    """One completed turn of the conversation: the candidate's message and the reply."""

    turn: int
    user: str
    assistant: str


@dataclass(frozen=True)
class RubricScore:
    criterion: str
    score: float  # 0..100
    reason: str
    weight: float = 0.0  # its share of the turn score under the intent's rubric (weights sum to 1)


@dataclass(frozen=True)
class TurnJudgement:
    """The per-turn evaluation (intent + rubric + answer summary) of one turn."""

    intent: Intent
    score: float  # 0..100, the weighted mean of the rubric scores
    rubrics: Sequence[RubricScore]
    final_reasoning: str
    user_prompt_summary: str
    llm_answer_summary: str
    llm_answer_reasoning: str
    # Who produced it: the provider that actually answered, which may be the offline
    # fallback standing in for the configured one (then `degraded`).
    provider: str = ""
    model: str = ""
    degraded: bool = False
    # Median-of-k judging (vibe/llm/median.py): how many times the turn was scored and
    # max - min of those scores; one sample has spread 0.
    samples: int = 1
    score_spread: float = 0.0
    # The whole conversation through this turn judged as a strategy, in the same call,
    # when the caller passed the earlier turns (`conversation` of `evaluate_turn`): the
    # holistic judgement kept fresh while the candidate works, at no extra LLM call.
    holistic: HolisticJudgement | None = None


@dataclass(frozen=True)
class EvaluatedTurn:
    """What the holistic judge sees of each turn.

    `intent` and `score` are None for a turn whose own evaluation is not stored yet (it
    is being evaluated beside the turn that judges the conversation): the judge reads
    that turn from its transcript alone."""

    turn: int
    user: str
    assistant_summary: str
    intent: Intent | None
    score: float | None
    violated: bool = False


@dataclass(frozen=True)
class HolisticCriterionScore:
    criterion: str
    score: float  # 0..100
    evidence: str  # cites turn numbers, e.g. "turns 2 and 4 ..."


@dataclass(frozen=True)
class HolisticJudgement:
    score: float  # 0..100, the holistic_flow_score
    criteria: Sequence[HolisticCriterionScore] = field(default_factory=tuple)
    summary: str = ""
    provider: str = ""  # as in TurnJudgement
    model: str = ""
    degraded: bool = False


class LLMUnavailable(Exception):
    """The LLM gave no usable answer within the call's budget (rate limited, down,
    circuit open, stream broken). The message can be shown to the candidate as is.

    `upstream_failed` says whether the LLM service itself failed (errors, timeouts),
    which is what a circuit breaker counts, as opposed to our own quota running out.
    """

    def __init__(self, message: str, *, upstream_failed: bool = False):
        super().__init__(message)
        self.upstream_failed = upstream_failed


class LLMProvider(Protocol):
    """An LLM (or a stand-in for one) that can tutor and judge."""

    # Read-only: wrappers (tracing, median of k, fallback) answer with their inner provider's.
    @property
    def name(self) -> str:  # "offline" or "gemini"
        ...

    @property
    def model(self) -> str: ...

    async def check_guardrail(
        self, problem: ProblemContext, history: Sequence[Exchange], message: str, *, second_opinion: bool = False
    ) -> GuardrailVerdict:
        """Is this message a request for the solution, a jailbreak, off-topic or abuse?

        `second_opinion`: the caller has a reason to doubt a verdict already given (the
        reply tripped the leak check); a provider with a model asks it, whatever the
        offline classifier's confidence."""
        ...

    def stream_tutor_reply(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        message: str,
        guardrail: GuardrailVerdict,
        guidance: TutorGuidance | None = None,
    ) -> AsyncGenerator[str, None]:
        """Yields the Socratic reply piece by piece; an educational refusal when
        `guardrail.violated`. `guidance` is the core's plan for the reply."""
        ...

    async def evaluate_turn(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        exchange: Exchange,
        guardrail: GuardrailVerdict,
        conversation: Sequence[EvaluatedTurn] | None = None,
    ) -> TurnJudgement:
        """Classifies the turn's intent and scores the candidate's prompt. With
        `conversation` (every turn before this one, evaluated or not; may be empty) it
        also judges the whole conversation through this turn, in the same call, and
        returns it as `TurnJudgement.holistic`."""
        ...

    async def evaluate_holistic(self, problem: ProblemContext, turns: Sequence[EvaluatedTurn]) -> HolisticJudgement:
        """Judges the whole conversation as a problem-solving strategy."""
        ...

    async def summarize_conversation(
        self, problem: ProblemContext, exchanges: Sequence[Exchange], previous_summary: str
    ) -> str:
        """The conversation memory: `previous_summary` (of the turns before `exchanges`;
        empty at first) extended with `exchanges`, as a short plain text saying per turn
        what the candidate asked or tried and what the tutor hinted."""
        ...

    async def aclose(self) -> None: ...


class DelegatingProvider:
    """An `LLMProvider` that hands every call to `inner`: the base of wrappers that
    change one or two calls (tracing, median of k) and must follow the interface as it
    grows, typed, without `__getattr__` pass-through."""

    def __init__(self, inner: LLMProvider):
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def model(self) -> str:
        return self.inner.model

    async def check_guardrail(
        self, problem: ProblemContext, history: Sequence[Exchange], message: str, *, second_opinion: bool = False
    ) -> GuardrailVerdict:
        return await self.inner.check_guardrail(problem, history, message, second_opinion=second_opinion)

    def stream_tutor_reply(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        message: str,
        guardrail: GuardrailVerdict,
        guidance: TutorGuidance | None = None,
    ) -> AsyncGenerator[str, None]:
        return self.inner.stream_tutor_reply(problem, history, message, guardrail, guidance)

    async def evaluate_turn(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        exchange: Exchange,
        guardrail: GuardrailVerdict,
        conversation: Sequence[EvaluatedTurn] | None = None,
    ) -> TurnJudgement:
        return await self.inner.evaluate_turn(problem, history, exchange, guardrail, conversation)

    async def evaluate_holistic(self, problem: ProblemContext, turns: Sequence[EvaluatedTurn]) -> HolisticJudgement:
        return await self.inner.evaluate_holistic(problem, turns)

    async def summarize_conversation(
        self, problem: ProblemContext, exchanges: Sequence[Exchange], previous_summary: str
    ) -> str:
        return await self.inner.summarize_conversation(problem, exchanges, previous_summary)

    async def aclose(self) -> None:
        await self.inner.aclose()
