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

The same check protects text the candidate must never be shown (`TextItem`): the tutor's
own instructions (`vibe.llm.instructions`), the rungs of the hint ladder beyond the ones
given so far (the current rung is guidance, the whole ladder is a dump), and the
problem's hidden tests. Text is compared as overlapping `TEXT_K`-character shingles of
its letters and digits only (case, spacing, punctuation and markdown do not hide a
copy; Hangul is letters too), minus the shingles of what the candidate may see (the
statement, the starter code, the rungs given). A reply is cut when it holds
TUTOR_LEAK_THRESHOLD of one protected text's shingles, or `TEXT_RUN_CHARS` characters of
it verbatim in a row (a long text quoted in part); what replaces it then is a refusal,
and the turn is flagged with the material (`LeakOutcome.material`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from vibe.llm.base import Exchange, ProblemContext, TutorGuidance
from vibe.llm.instructions import instruction_texts
from vibe.llm.offline import is_korean
from vibe.shared.fingerprint import StreamFingerprinter, text_fingerprints

# What a cut reply was turning into (LeakOutcome.material, stored with the turn).
REFERENCE_SOLUTION = "reference_solution"
INSTRUCTIONS = "instructions"
HINT_LADDER = "hint_ladder"
HIDDEN_TESTS = "hidden_tests"

# Characters (letters and digits) per text shingle, and how many in a row of one protected
# text cut the reply whatever its length. A Hangul syllable carries about what two or three
# Latin letters do, so Korean text gets shorter shingles and runs.
TEXT_K = 16
TEXT_RUN_CHARS = 60
TEXT_K_HANGUL = 7
TEXT_RUN_CHARS_HANGUL = 24
_HIDDEN_TEST_CHARS = 2000  # of each hidden test's input and output (a large test's head is enough)


@dataclass(frozen=True)
class LeakOutcome:
    cut: bool  # the reply reached the threshold and was cut
    share: float  # highest share (0..1) of one reference's fingerprints (or protected text's shingles) in the reply
    language: str = ""  # the reference with that share ("" for text)
    material: str = ""  # what the reply reproduced most: REFERENCE_SOLUTION, INSTRUCTIONS, HINT_LADDER, HIDDEN_TESTS


NOT_CHECKED = LeakOutcome(cut=False, share=0.0)


@dataclass(frozen=True)
class TextItem:
    """A text no reply may reproduce, as its `k`-character shingles that are not public anyway."""

    material: str
    k: int
    shingles: frozenset[int]

    @property
    def run(self) -> int:
        """Consecutive shingles of it that cut a reply (TEXT_RUN_CHARS in a row)."""
        chars = TEXT_RUN_CHARS_HANGUL if self.k == TEXT_K_HANGUL else TEXT_RUN_CHARS
        return chars - self.k + 1


def text_key(text: str) -> str:
    """What text shingles are cut from: letters and digits only, case-folded (NFKC)."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


def shingle_size(text: str) -> int:
    key = text_key(text)
    hangul = sum(1 for ch in key if "\uac00" <= ch <= "\ud7a3")
    return TEXT_K_HANGUL if key and hangul * 2 >= len(key) else TEXT_K


def text_shingles(text: str, k: int = TEXT_K) -> frozenset[int]:
    key = text_key(text)
    return frozenset(hash(key[i : i + k]) for i in range(len(key) - k + 1))


def text_index(texts: Sequence[TextItem]) -> dict[int, dict[int, list[int]]]:
    """shingle size -> shingle -> the texts (positions in `texts`) that have it."""
    index: dict[int, dict[int, list[int]]] = {}
    for i, item in enumerate(texts):
        for h in item.shingles:
            index.setdefault(item.k, {}).setdefault(h, []).append(i)
    return index


@dataclass
class _TextState:
    found: set[int] = field(default_factory=set)
    run: int = 0
    last_end: int = -1  # the position of the last matching shingle (runs are consecutive shingles)


class LeakCheck:
    """The running check of one reply."""

    def __init__(
        self,
        references: Mapping[str, frozenset[int]],
        threshold: float,
        texts: Sequence[TextItem] = (),
        index: Mapping[int, Mapping[int, Sequence[int]]] | None = None,
    ):
        self.references = references
        self.threshold = threshold
        self._stream = StreamFingerprinter(identifiers=True)
        self._found = dict.fromkeys(references, 0)
        self._best = NOT_CHECKED
        self.texts = texts
        self._index = text_index(texts) if index is None else index
        self._text = [_TextState() for _ in texts]
        self._tail = ""  # the last characters of the reply's text key (as many as the longest shingle needs)
        self._pos = 0

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
                self._best = LeakOutcome(cut=False, share=share, language=language, material=REFERENCE_SOLUTION)
        if self._best.share >= self.threshold and not self._best.cut:
            self._best = LeakOutcome(True, self._best.share, self._best.language, self._best.material)
        if self.texts and not self._best.cut:
            self._feed_text(chunk)
        return self._best.cut

    def _feed_text(self, chunk: str) -> None:
        new = text_key(chunk)
        key = self._tail + new
        start = len(self._tail)
        for end in range(start + 1, len(key) + 1):  # each new character ends one shingle per size
            self._pos += 1
            for k, index in self._index.items():
                if end < k:
                    continue
                h = hash(key[end - k : end])
                for item in index.get(h, ()):
                    if self._match(item, h):
                        return
        self._tail = key[-(TEXT_K - 1) :]

    def _match(self, item: int, h: int) -> bool:
        state, text = self._text[item], self.texts[item]
        state.found.add(h)
        state.run = state.run + 1 if state.last_end == self._pos - 1 else 1
        state.last_end = self._pos
        share = len(state.found) / len(text.shingles)
        cut = share >= self.threshold or state.run >= text.run
        if cut or share > self._best.share:
            self._best = LeakOutcome(cut, max(share, self._best.share) if cut else share, "", text.material)
        return cut


class LeakGuard:
    """Reference fingerprints and protected texts per problem (computed once) and a
    check per reply."""

    def __init__(self, threshold: float):
        if not 0 < threshold <= 1:
            raise ValueError(f"leak threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self._references: dict[str, dict[str, frozenset[int]]] = {}
        self._texts: dict[tuple[str, int | None], tuple[tuple[TextItem, ...], dict[int, dict[int, list[int]]]]] = {}
        self._instructions = instruction_texts()

    def check(
        self, problem: ProblemContext, *, rungs_shown: int | None = None, hidden_tests: Sequence[str] = ()
    ) -> LeakCheck:
        """The check of one reply. `rungs_shown`: how many rungs of the hint ladder the
        candidate may see by the end of this reply (None: all of them); `hidden_tests`:
        the problem's hidden test data (inputs and expected outputs)."""
        if problem.problem_id not in self._references:
            self._references[problem.problem_id] = reference_fingerprints(problem)
        key = (problem.problem_id, rungs_shown)
        if key not in self._texts:
            texts = self._protected(problem, rungs_shown, hidden_tests)
            self._texts[key] = (texts, text_index(texts))
        texts, index = self._texts[key]
        return LeakCheck(self._references[problem.problem_id], self.threshold, texts, index)

    def _protected(
        self, problem: ProblemContext, rungs_shown: int | None, hidden_tests: Sequence[str]
    ) -> tuple[TextItem, ...]:
        shown = len(problem.hints) if rungs_shown is None else max(0, rungs_shown)
        public_texts = [problem.statement, problem.starter_code, problem.input_format, problem.output_format]
        public_texts += list(problem.hints[:shown])
        public = {k: frozenset().union(*(text_shingles(t, k) for t in public_texts)) for k in (TEXT_K, TEXT_K_HANGUL)}

        def item(material: str, text: str) -> TextItem:
            k = shingle_size(text)
            return TextItem(material, k, text_shingles(text, k) - public[k])

        items = [item(INSTRUCTIONS, t) for t in self._instructions]
        items += [item(HINT_LADDER, h) for h in problem.hints[shown:]]
        items += [item(HIDDEN_TESTS, t[:_HIDDEN_TEST_CHARS]) for t in hidden_tests]
        # A text with almost nothing of its own left (a tiny test case, a rung made of the
        # statement's words) would cut replies that merely discuss the problem.
        return tuple(i for i in items if len(i.shingles) >= i.run)


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


_REFUSE_EN = (
    "\n\n(I'll stop there: I can't share my instructions, the hint list or the test's hidden material. "
    "That stays with me in this test.) "
)
_REFUSE_KO = "\n\n(여기서 멈출게요. 제 지시 사항, 힌트 목록, 시험의 비공개 자료는 보여 드릴 수 없어요.) "


def cut_notice(
    problem: ProblemContext,
    history: Sequence[Exchange],
    message: str,
    guidance: TutorGuidance | None,
    material: str = REFERENCE_SOLUTION,
) -> str:
    """What replaces the rest of a cut reply: for a solution, the rung of the hint ladder
    the core chose for this turn, else the first rung no earlier reply showed, else a
    guiding question; for protected text (instructions, the ladder, hidden tests), a
    refusal and the rung of this turn, if any, else a guiding question."""
    korean = is_korean(message)
    if material == REFERENCE_SOLUTION:
        head, hint = (_CUT_KO if korean else _CUT_EN), _next_hint(problem, history, guidance)
    else:
        head = _REFUSE_KO if korean else _REFUSE_EN
        index = guidance.hint_index if guidance is not None else None
        hint = problem.hints[index] if index is not None and 0 <= index < len(problem.hints) else ""
    tail = (_HINT_KO if korean else _HINT_EN).format(hint=hint) if hint else (_QUESTION_KO if korean else _QUESTION_EN)
    return head + tail


def _next_hint(problem: ProblemContext, history: Sequence[Exchange], guidance: TutorGuidance | None) -> str:
    hints = list(problem.hints)
    if guidance is not None and guidance.hint_index is not None and 0 <= guidance.hint_index < len(hints):
        return hints[guidance.hint_index]
    shown = "\n".join(ex.assistant for ex in history)
    return next((h for h in hints if h not in shown), "")
