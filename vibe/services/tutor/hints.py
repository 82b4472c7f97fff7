"""Hint escalation, the same whichever provider writes the reply.

From the whole conversation the tutor core decides, for each new message, which rung
of the problem's hint ladder may be shown now and whether the candidate should first
show some work of their own. The decision is a pure function of the messages (no
model, no clock), so it is replayed over the history instead of being stored:

- a turn that asks for a hint (or for the solution, whose refusal offers the next hint)
  is given the next rung; rungs go up one at a time, are never repeated while there
  are more, and stay on the last one when the ladder is exhausted;
- a rung also counts as given when an earlier reply quoted it word for word (a reply
  may reveal a hint on its own), so the ladder never goes back;
- after `low_effort_limit` low-effort requests in a row ("next hint", "just tell me",
  "힌트 더", "몰라") the tutor asks for an attempt, a plan or an example worked by hand
  instead of the next rung; any message with some work in it resets the streak.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vibe.llm.base import Exchange, ProblemContext, TutorGuidance, Violation
from vibe.llm.offline import check_guardrail_text, contains_code, is_hint_like

DEFAULT_LOW_EFFORT_LIMIT = 3

# Words that carry no work of the candidate's own: a message made only of these is a
# bare request for more help.
_FILLER_EN = frozenset(
    [
        "just",
        "tell",
        "me",
        "give",
        "show",
        "send",
        "the",
        "a",
        "an",
        "another",
        "next",
        "more",
        "one",
        "two",
        "hint",
        "hints",
        "clue",
        "clues",
        "tip",
        "tips",
        "please",
        "pls",
        "plz",
        "i",
        "i'm",
        "im",
        "dont",
        "don't",
        "do",
        "does",
        "not",
        "no",
        "know",
        "idk",
        "idea",
        "help",
        "answer",
        "solution",
        "code",
        "stuck",
        "again",
        "what",
        "what's",
        "whats",
        "now",
        "so",
        "and",
        "then",
        "continue",
        "go",
        "on",
        "keep",
        "going",
        "still",
        "can",
        "you",
        "could",
        "would",
        "just",
        "some",
        "any",
        "it",
        "lost",
        "give",
        "up",
        "have",
        "got",
        "am",
        "really",
        "seriously",
        "come",
        "dude",
        "hmm",
        "um",
        "uh",
        "huh",
        "step",
        "steps",
        "other",
        "new",
        "explain",
        "it",
        "that",
        "this",
        "how",
        "why",
    ]
)
_FILLER_KO = frozenset(
    [
        "힌트",
        "더",
        "좀",
        "다음",
        "몰라",
        "모르겠어",
        "모르겠다",
        "모르겠어요",
        "모르겠는데",
        "몰라요",
        "그냥",
        "답",
        "정답",
        "뭐야",
        "뭔데",
        "제발",
        "빨리",
        "하나",
        "또",
        "계속",
        "포기",
        "포기할래",
        "글쎄",
        "다시",
        "그래서",
        "그럼",
        "추가",
        "하나만",
        "주라",
        "줘",
        "줘요",
        "주세요",
        "알려",
        "알려줘",
        "알려줘요",
        "알려주세요",
        "도와",
        "도와줘",
        "도와주세요",
        "어떻게",
        "해",
        "해줘",
        "뭐",
        "진짜",
        "아직",
        "전혀",
    ]
)
_KO_VERB_STEMS = ("알려", "몰라", "모르", "도와", "주세", "줘", "줄래", "포기", "가르쳐", "말해")
_KO_PARTICLE = re.compile(r"(?:으로|에서|에게|까지|부터|은|는|이|가|을|를|에|의|로|와|과|도|만|요)$")
# Thanks and acknowledgements neither ask for help nor show work: they leave the streak alone.
_ACKNOWLEDGEMENT = re.compile(
    r"^\s*(?:ok(?:ay)?|thanks?(?:\s+you)?|thx|got\s+it|i\s+see|sure|yes|yeah|cool|alright|알겠(?:어|어요|습니다)|고마워(?:요)?|감사(?:합니다|해요)|네|응|넵)\s*[.!~]*\s*$",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"[a-z']+|[가-힣]+|\d+", re.IGNORECASE)
_MAX_LOW_EFFORT_TOKENS = 12


def is_low_effort(message: str) -> bool:
    """A bare request for more help: no code, no numbers, nothing but filler words."""
    if contains_code(message):
        return False
    tokens = _TOKEN.findall(message.lower())
    if len(tokens) > _MAX_LOW_EFFORT_TOKENS or _ACKNOWLEDGEMENT.match(message):
        return False
    return all(_is_filler(token) for token in tokens)


def _is_filler(token: str) -> bool:
    if token.isdigit():
        return False  # numbers are worked examples, the opposite of low effort
    if token in _FILLER_EN or token in _FILLER_KO:
        return True
    if re.match(r"[가-힣]", token):
        stem = _KO_PARTICLE.sub("", token)
        return stem in _FILLER_KO or token.startswith(_KO_VERB_STEMS)
    return False


def _wants_hint(problem: ProblemContext, message: str, has_history: bool) -> bool:
    """A hint request, or a solution request (whose refusal offers the next hint instead)."""
    if is_hint_like(message, has_history):
        return True
    verdict = check_guardrail_text(problem, message)
    return verdict.violation is Violation.SOLUTION_REQUEST


@dataclass(frozen=True)
class Signs:
    """What the replay reads of one message: a pure function of the problem, the text and
    whether it came after other messages."""

    low_effort: bool
    acknowledgement: bool
    wants_hint: bool


def message_signs(problem: ProblemContext, message: str, has_history: bool) -> Signs:
    return Signs(
        is_low_effort(message), bool(_ACKNOWLEDGEMENT.match(message)), _wants_hint(problem, message, has_history)
    )


SignsOf = Callable[[ProblemContext, str, bool], Signs]


class SignsCache:
    """`message_signs`, remembered for the most recently used messages of problems that do
    not change while the process runs (the tutor's, keyed by problem id).

    Why: every turn replays the whole conversation, and the signs of each earlier message
    cost a run of the offline guardrail classifier; without this, a turn's reply started
    later the longer the session (about 1 ms of CPU per earlier turn, before the model's
    request is sent). With it, only the new message is classified."""

    def __init__(self, size: int = 50_000):
        self.size = size
        self._signs: OrderedDict[tuple[str, bytes, bool], Signs] = OrderedDict()

    def __call__(self, problem: ProblemContext, message: str, has_history: bool) -> Signs:
        # A digest, not the text: the cache's size stays bounded whatever the messages' length.
        digest = hashlib.blake2b(message.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        key = (problem.problem_id, digest, has_history)
        signs = self._signs.get(key)
        if signs is not None:
            self._signs.move_to_end(key)
            return signs
        signs = self._signs[key] = message_signs(problem, message, has_history)
        if len(self._signs) > self.size:
            self._signs.popitem(last=False)
        return signs


def _revealed_rungs(problem: ProblemContext, history: Sequence[Exchange]) -> int:
    """How many rungs earlier replies quoted word for word (the highest one counts)."""
    revealed = 0
    for k, hint in enumerate(problem.hints):
        text = hint.strip()
        if text and any(text in ex.assistant for ex in history):
            revealed = k + 1
    return revealed


def decide_guidance(
    problem: ProblemContext,
    history: Sequence[Exchange],
    message: str,
    *,
    low_effort_limit: int = DEFAULT_LOW_EFFORT_LIMIT,
    memory_summary: str = "",
) -> TutorGuidance:
    """The guidance for the reply to `message`, given ALL earlier exchanges in order."""
    guidance, _ = plan_hints(
        problem, history, message, low_effort_limit=low_effort_limit, memory_summary=memory_summary
    )
    return guidance


def rungs_shown(
    problem: ProblemContext,
    history: Sequence[Exchange],
    message: str,
    *,
    low_effort_limit: int = DEFAULT_LOW_EFFORT_LIMIT,
) -> int:
    """How many rungs of the ladder (from the first) the candidate may have seen once the
    reply to `message` is out: the ones given so far, this turn's included, and any an
    earlier reply quoted. The outbound check protects the rest."""
    _, shown = plan_hints(problem, history, message, low_effort_limit=low_effort_limit)
    return shown


def plan_hints(
    problem: ProblemContext,
    history: Sequence[Exchange],
    message: str,
    *,
    low_effort_limit: int = DEFAULT_LOW_EFFORT_LIMIT,
    memory_summary: str = "",
    signs: SignsOf = message_signs,
) -> tuple[TutorGuidance, int]:
    """`decide_guidance` and `rungs_shown` from one replay of the conversation (the tutor
    needs both for every reply; `signs` may remember the earlier messages' signs)."""
    guidance, given = _replay(problem, history, message, low_effort_limit, memory_summary, signs)
    return guidance, min(len(problem.hints), max(given, _revealed_rungs(problem, history)))


def _replay(
    problem: ProblemContext,
    history: Sequence[Exchange],
    message: str,
    low_effort_limit: int,
    memory_summary: str,
    signs_of: SignsOf,
) -> tuple[TutorGuidance, int]:
    if low_effort_limit < 1:
        raise ValueError(f"low_effort_limit must be >= 1, got {low_effort_limit}")
    last_rung = len(problem.hints) - 1
    given = 0  # rungs given so far by the replay
    streak = 0  # low-effort requests in a row, ending with the message being planned
    hint_index: int | None = None
    ask_to_try_first = False
    messages = [ex.user for ex in history] + [message]
    for i, text in enumerate(messages):
        signs = signs_of(problem, text, i > 0)
        if signs.low_effort:
            streak += 1
        elif not signs.acknowledgement:
            streak = 0  # some work of their own: an attempt, a plan, a real question
        hint_index, ask_to_try_first = None, False
        if signs.wants_hint and streak >= low_effort_limit:
            ask_to_try_first = True  # no rung this turn: it stays for after the attempt
        elif signs.wants_hint and last_rung >= 0:
            if i == len(messages) - 1:
                given = max(given, _revealed_rungs(problem, history))
            hint_index = min(given, last_rung)
            given += 1
    guidance = TutorGuidance(hint_index=hint_index, ask_to_try_first=ask_to_try_first, memory_summary=memory_summary)
    return guidance, given
