"""Text helpers shared by the offline provider's parts: regexes, language, terms,
summaries and the reference-solution lines that must never leave the tutor."""

from __future__ import annotations

import re

from vibe.llm.base import ProblemContext
from vibe.llm.memo import memo

_I = re.IGNORECASE
Rule = tuple[re.Pattern[str], str]


def rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, _I)


HANGUL_CHAR = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
_LATIN_CHAR = re.compile(r"[A-Za-z]")
CODE_BLOCK = re.compile(r"```.*?(?:```|$)", re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]+`")


def contains_code(text: str) -> bool:
    """A fenced block or inline `code` anywhere in the text."""
    return bool(CODE_BLOCK.search(text) or INLINE_CODE.search(text))


def prose(text: str) -> str:
    """The message without code blocks and inline code (code says nothing about language)."""
    return INLINE_CODE.sub(" ", CODE_BLOCK.sub(" ", text))


def is_korean(text: str) -> bool:
    """True when the prose of `text` is mostly Hangul.

    A Hangul syllable carries roughly what two or three Latin letters do, so a message
    like "two_sum 함수에서 왜 에러가 나?" (identifiers + Korean prose) counts as Korean.
    """
    words = prose(text)
    hangul = len(HANGUL_CHAR.findall(words))
    latin = len(_LATIN_CHAR.findall(words))
    return hangul > 0 and hangul * 2 >= latin


_STOPWORDS = frozenset(
    [
        "with",
        "that",
        "this",
        "from",
        "have",
        "return",
        "returns",
        "given",
        "each",
        "which",
        "there",
        "their",
        "where",
        "when",
        "what",
        "your",
        "will",
        "should",
        "into",
        "than",
        "then",
        "them",
        "these",
        "those",
        "only",
        "also",
        "such",
        "same",
        "some",
        "more",
        "most",
        "other",
        "must",
        "does",
        "about",
        "after",
        "before",
        "write",
        "function",
        "example",
        "input",
        "output",
        "number",
        "numbers",
        "list",
        "array",
        "string",
        "problem",
        "solve",
        "test",
        "tests",
        "code",
        "please",
        "could",
        "would",
        "like",
        "just",
        "make",
        "sure",
        "value",
        "values",
        "find",
        "print",
        "being",
        "been",
        "were",
        "they",
        "you",
        "the",
        "and",
        "for",
        "are",
        "can",
    ]
)
_KO_PARTICLE = re.compile(r"(?:으로|에서|에게|까지|부터|은|는|이|가|을|를|에|의|로|와|과|도|만|요)$")
_WORD = re.compile(r"[a-z_][a-z0-9_]{3,}|[가-힣]{2,}", re.IGNORECASE)


@memo
def content_terms(text: str) -> frozenset[str]:
    terms: set[str] = set()
    for word in _WORD.findall(text.lower()):
        if HANGUL_CHAR.match(word):
            word = _KO_PARTICLE.sub("", word)
            if len(word) < 2:
                continue
        elif word in _STOPWORDS:
            continue
        terms.add(word)
    return frozenset(terms)


_SENTENCE_END = re.compile(r"(?<=[.!?。？！])\s+")


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 3]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:") + "..."


def summarize_prompt(message: str) -> str:
    text = CODE_BLOCK.sub(" [code] ", message)
    return clip(text, 160) or "(empty message)"


def summarize_answer(answer: str) -> str:
    text = " ".join(CODE_BLOCK.sub(" [code] ", answer).split())
    if not text:
        return "(no reply)"
    summary = ""
    for sentence in _SENTENCE_END.split(text):
        candidate = f"{summary} {sentence}".strip()
        if len(candidate) > 200:
            break
        summary = candidate
        if len(summary) >= 80:
            break
    return summary or clip(text, 200)


def leaks_reference(problem: ProblemContext, text: str) -> bool:
    return any(line in text for line in reference_lines(problem))


def reference_lines(problem: ProblemContext) -> list[str]:
    """The non-trivial lines of the reference solution (used for leak checks)."""
    return [ln.strip() for ln in problem.reference_solution.splitlines() if len(ln.strip()) >= 12]


def problem_terms(problem: ProblemContext) -> frozenset[str]:
    return content_terms(f"{problem.title} {problem.statement}")
