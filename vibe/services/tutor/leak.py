"""The leak check on the way out: a reply that turns into the reference solution is cut.

Every chunk the model writes is fingerprinted (winnowing, `vibe.shared.fingerprint`: comments
and whitespace ignored, identifiers other than keywords replaced by one placeholder,
30-character k-grams, so re-indenting or renaming variables does not hide a copy)
before it is sent, and the fingerprints are compared with those of each
reference solution of the problem (every language). Fingerprints of what the candidate
is shown anyway (starter code, statement, hints) are not counted, so echoing the starter
code is fine. When the share of one reference's fingerprints found in the reply so far
reaches TUTOR_LEAK_THRESHOLD, that chunk and everything after it are withheld and a
hint (the next rung of the hint ladder) or a guiding question is sent instead.

A line of syntax or an explanation matches a handful of fingerprints at most, far below
the threshold: a reference has ~80-210 of them. The cost per chunk is proportional to
the chunk (one hash per character, see `StreamFingerprinter`), never to the reply so far.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vibe.llm.base import Exchange, ProblemContext, TutorGuidance
from vibe.llm.offline import is_korean
from vibe.shared.fingerprint import StreamFingerprinter, text_fingerprints


@dataclass(frozen=True)
class LeakOutcome:
    cut: bool  # the reply reached the threshold and was cut
    share: float  # highest share (0..1) of one reference's fingerprints found in the reply
    language: str = ""  # the reference with that share


NOT_CHECKED = LeakOutcome(cut=False, share=0.0)


class LeakCheck:
    """The running check of one reply."""

    def __init__(self, references: Mapping[str, frozenset[int]], threshold: float):
        self.references = references
        self.threshold = threshold
        self._stream = StreamFingerprinter(identifiers=True)
        self._found = dict.fromkeys(references, 0)
        self._best = NOT_CHECKED

    @property
    def outcome(self) -> LeakOutcome:
        return self._best

    def feed(self, chunk: str) -> bool:
        """Adds the next chunk; True when the reply has now reached the threshold."""
        for h in self._stream.feed(chunk):
            for language, prints in self.references.items():
                if h in prints:
                    self._found[language] += 1
        for language, prints in self.references.items():
            share = self._found[language] / len(prints)
            if share > self._best.share:
                self._best = LeakOutcome(cut=False, share=share, language=language)
        if self._best.share >= self.threshold:
            self._best = LeakOutcome(cut=True, share=self._best.share, language=self._best.language)
        return self._best.cut


class LeakGuard:
    """Reference fingerprints per problem (computed once) and a check per reply."""

    def __init__(self, threshold: float):
        if not 0 < threshold <= 1:
            raise ValueError(f"leak threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self._references: dict[str, dict[str, frozenset[int]]] = {}

    def check(self, problem: ProblemContext) -> LeakCheck:
        if problem.problem_id not in self._references:
            self._references[problem.problem_id] = reference_fingerprints(problem)
        return LeakCheck(self._references[problem.problem_id], self.threshold)


def reference_fingerprints(problem: ProblemContext) -> dict[str, frozenset[int]]:
    """language -> fingerprints of its reference, minus what the candidate is shown."""
    sources = dict(problem.reference_solutions)
    if problem.reference_solution and problem.reference_solution not in sources.values():
        sources.setdefault("python", problem.reference_solution)
    public = text_fingerprints(problem.starter_code, True) | text_fingerprints(problem.statement, True)
    for hint in problem.hints:
        public |= text_fingerprints(hint, True)
    prints = {language: frozenset(text_fingerprints(source, True) - public) for language, source in sources.items()}
    return {language: p for language, p in prints.items() if p}


_CUT_EN = "\n\n(I'll stop there: that was turning into the solution itself, which I can't write for you in this test.) "
_CUT_KO = "\n\n(여기서 멈출게요. 이대로면 정답 코드를 그대로 쓰게 되는데, 이 시험에서는 그럴 수 없어요.) "
_HINT_EN = "A hint instead: {hint}"
_HINT_KO = "대신 힌트를 드릴게요: {hint}"
_QUESTION_EN = "Instead: which step of your plan would you like to write yourself first, and what should it produce?"
_QUESTION_KO = "대신 질문: 계획 중 어느 단계를 먼저 직접 작성해 볼까요? 그 단계는 무엇을 만들어야 하나요?"


def cut_notice(
    problem: ProblemContext, history: Sequence[Exchange], message: str, guidance: TutorGuidance | None
) -> str:
    """What replaces the rest of a cut reply: the rung of the hint ladder the core chose
    for this turn, else the first rung no earlier reply showed, else a guiding question."""
    korean = is_korean(message)
    hint = _next_hint(problem, history, guidance)
    tail = (_HINT_KO if korean else _HINT_EN).format(hint=hint) if hint else (_QUESTION_KO if korean else _QUESTION_EN)
    return (_CUT_KO if korean else _CUT_EN) + tail


def _next_hint(problem: ProblemContext, history: Sequence[Exchange], guidance: TutorGuidance | None) -> str:
    hints = list(problem.hints)
    if guidance is not None and guidance.hint_index is not None and 0 <= guidance.hint_index < len(hints):
        return hints[guidance.hint_index]
    shown = "\n".join(ex.assistant for ex in history)
    return next((h for h in hints if h not in shown), "")
