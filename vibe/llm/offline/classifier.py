"""The learned offline classifiers' representation and artefact: multinomial logistic
regressions (the intent's mixed with one hidden layer, `Hidden`) over TF-IDF character and
word n-grams of the message (Korean and English
alike: character n-grams need no tokenizer), word n-grams of the previous candidate
message and tutor reply (follow-ups and continuations depend on them), and the rule
features of learned.py. Trained by `python -m vibe_dev.train_judge` on the train part of
corpus/ and shipped as `judge_model.npz` (weights, vocabulary, IDF; numpy only at run
time). Loaded once per process.

The same functions turn text into features at training and at run time, so the two
cannot drift apart; the artefact records the hash of the corpus it was trained on
(tests/test_judge_model.py compares it with the committed corpus).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vibe.llm.memo import memo
from vibe.llm.offline.encoder import EncoderError, embed
from vibe.llm.offline.encoder import load as load_encoder

ARTEFACT_PATH = Path(__file__).with_name("judge_model.npz")
FORMAT = "vibe.judge-model/v1"

# The blocks of the feature vector. Each text block is TF-IDF (sublinear tf) and
# L2-normalised on its own, then scaled by its weight, so that a long previous reply
# cannot drown the message itself.
CHAR, WORD, PREV_USER, PREV_TUTOR, RULES = "c", "w", "p", "t", "r"
TEXT_BLOCKS = (CHAR, WORD, PREV_USER, PREV_TUTOR)
_MAX_CHARS = 1500  # the head of a long message says what it asks; a pasted file adds noise
_CHAR_N = (2, 5)
_SPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"[^\W\d_]+|\d+|[^\w\s]", re.UNICODE)


class ModelError(RuntimeError):
    """The artefact is missing or unreadable: the offline judge cannot decide (fail closed)."""


def normalise(text: str) -> str:
    text = _DIGITS.sub("0", text[:_MAX_CHARS].lower())
    return _SPACE.sub(" ", text).strip()


def char_gram_list(text: str) -> list[str]:
    """Every character n-gram occurrence inside word boundaries (each word padded with
    spaces), in text order: the one definition both char_ngrams (training) and the
    run-time vectoriser count."""
    lo, hi = _CHAR_N
    return [
        padded[i : i + n]
        for padded in (f" {token} " for token in normalise(text).split(" ") if token)
        for n in range(lo, hi + 1)
        for i in range(len(padded) - n + 1)
    ]


def word_gram_list(text: str, bigrams: bool = True) -> list[str]:
    """Every word (and, with `bigrams`, word-pair) occurrence: the words first, then the pairs."""
    tokens: list[str] = _WORD.findall(normalise(text))
    if bigrams:
        return tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]
    return tokens


def char_ngrams(text: str) -> Counter[str]:
    """Character n-grams inside word boundaries (each word padded with spaces)."""
    return Counter(char_gram_list(text))


def word_ngrams(text: str, bigrams: bool = True) -> Counter[str]:
    return Counter(word_gram_list(text, bigrams))


# Each text block: the occurrences of its grams in one text (the same functions as
# Inputs.text_blocks).
_BLOCK_GRAMS: dict[str, Callable[[str], list[str]]] = {
    CHAR: char_gram_list,
    WORD: word_gram_list,
    PREV_USER: word_gram_list,
    PREV_TUTOR: functools.partial(word_gram_list, bigrams=False),
}


@dataclass(frozen=True)
class Inputs:
    """One example: the message, the previous candidate message and tutor reply, and the
    rule features (name -> value, mostly 0/1)."""

    message: str
    prev_user: str
    prev_tutor: str
    rules: Mapping[str, float]

    def text_blocks(self) -> dict[str, Counter[str]]:
        return {
            CHAR: char_ngrams(self.message),
            WORD: word_ngrams(self.message),
            PREV_USER: word_ngrams(self.prev_user),
            PREV_TUTOR: word_ngrams(self.prev_tutor, bigrams=False),
        }


@dataclass(frozen=True)
class Hidden:
    """A second reader of the same vector: one hidden layer of ReLU units over the columns
    seen in at least a few training examples. The linear head adds up each n-gram's vote on
    its own; this one can learn that two cues mean more together (a question *and* the
    previous answer's words in it, "test" *and* a request for inputs) than either does alone.

    `w1` is shipped as int8 with a scale per row (a column's weights share one scale): at
    32 units over the intent head's ~39,000 columns, 1.2 MB before compression."""

    columns: npt.NDArray[np.int64]  # the vocabulary columns it reads, ascending
    w1: npt.NDArray[np.float32]  # len(columns) x units
    b1: npt.NDArray[np.float64]
    w2: npt.NDArray[np.float64]  # units x classes
    b2: npt.NDArray[np.float64]
    share: float  # P = (1 - share) * linear + share * hidden

    @functools.cached_property
    def row_of(self) -> npt.NDArray[np.int64]:
        """Vocabulary column -> row of w1 (-1: not read). One entry longer than the last
        column read, so that any larger column can be clamped to a -1."""
        rows = np.full(int(self.columns[-1]) + 2 if len(self.columns) else 1, -1, dtype=np.int64)
        rows[self.columns] = np.arange(len(self.columns))
        return rows

    def probabilities(self, columns: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        rows = self.row_of[np.minimum(columns, len(self.row_of) - 1)]
        seen = rows >= 0
        hidden = np.maximum(values[seen] @ self.w1[rows[seen]] + self.b1, 0.0)
        return _softmax(hidden @ self.w2 + self.b2)


@dataclass(frozen=True)
class Second:
    """The head's second reading, for the messages its first leaves unsure: a linear head
    over the same vector and the message's sentence embedding (encoder.py), which carries
    what a message means where its n-grams are new. Asked only below `route_below`
    confidence: the encoder costs 30-200 ms a message, the first reading about one."""

    weights: npt.NDArray[np.floating[Any]]  # classes x (vocabulary + encoder.DIM), float16 as shipped
    bias: npt.NDArray[np.float64]
    embed_weight: float  # the embedding block's scale (a unit vector times this)
    route_below: float  # the first reading's confidence under which the second decides

    def unsure(self, classes: tuple[str, ...], probs: npt.NDArray[np.float64]) -> bool:
        """The first reading's confidence in its decision: of a head with a "none" class
        (the guardrail), P(none) or P(any violation), whichever is larger; otherwise its
        most likely class's probability."""
        if "none" in classes:
            p_none = float(probs[classes.index("none")])
            return max(p_none, 1.0 - p_none) < self.route_below
        return float(probs.max()) < self.route_below

    @functools.cached_property
    def table(self) -> npt.NDArray[np.float64]:
        """(vocabulary + DIM) x classes in float64: a row per matched column."""
        return np.ascontiguousarray(self.weights.T, dtype=np.float64)

    def probabilities(
        self, columns: npt.NDArray[np.int64], values: npt.NDArray[np.float64], embedding: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]:
        table = self.table
        dense = table[len(table) - len(embedding) :]
        logits = values @ table[columns] + self.embed_weight * (embedding.astype(np.float64) @ dense) + self.bias
        return _softmax(logits)


@dataclass(frozen=True)
class Head:
    """One classifier: P(class) = softmax(W x + b), mixed with its hidden layer's, if any;
    its second reading (`Second`) decides the messages it is unsure of."""

    classes: tuple[str, ...]
    weights: npt.NDArray[np.floating[Any]]  # classes x vocabulary (float16 as shipped)
    bias: npt.NDArray[np.float64]
    hidden: Hidden | None = None
    second: Second | None = None

    def decide(
        self,
        linear_logits: npt.NDArray[np.float64],
        columns: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
        embedding: Callable[[], npt.NDArray[np.float32]],
    ) -> npt.NDArray[np.float64]:
        """The head's probabilities: the first reading's, or where it is unsure the second's
        in place of the linear head's (`embedding` is asked for only then)."""
        probs = self.mix(linear_logits, columns, values)
        if self.second is not None and self.second.unsure(self.classes, probs):
            # The second reading stands in for the linear head; a hidden layer keeps its share.
            second = self.second.probabilities(columns, values, embedding())
            if self.hidden is None:
                return second
            share = self.hidden.share
            return (1.0 - share) * second + share * self.hidden.probabilities(columns, values)
        return probs

    def mix(
        self, linear_logits: npt.NDArray[np.float64], columns: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """The head's probabilities from its linear logits and the vector they came from."""
        probs = _softmax(linear_logits)
        if self.hidden is None:
            return probs
        share = self.hidden.share
        return (1.0 - share) * probs + share * self.hidden.probabilities(columns, values)


def _softmax(logits: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    exp = np.exp(logits - logits.max())
    out: npt.NDArray[np.float64] = exp / exp.sum()
    return out


@dataclass(frozen=True)
class JudgeModel:
    index: Mapping[str, int]  # "<block>|<feature>" -> column
    idf: npt.NDArray[np.float64]
    block_weights: Mapping[str, float]
    heads: Mapping[str, Head]
    meta: Mapping[str, object]  # corpus hash, training settings, figures

    def vectorize(self, inputs: Inputs) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The sparse feature vector: (columns, values). The same vector as
        `vectorize_blocks(inputs.text_blocks(), inputs.rules)` (up to float rounding),
        which training uses, computed without building every n-gram's string key: each
        gram is looked up in its block's vocabulary, only the matched columns are
        counted, and a text's block is remembered (`RuntimeTables.block`: the turn judge's
        heads, and the next turn's context, read the same texts again)."""
        runtime = self.runtime
        blocks = [
            runtime.block(block, text)
            for block, text in (
                (CHAR, inputs.message),
                (WORD, inputs.message),
                (PREV_USER, inputs.prev_user),
                (PREV_TUTOR, inputs.prev_tutor),
            )
        ]
        parts = [(c, v) for c, v, _ in blocks]
        rules = dict(inputs.rules)
        if self.oov_features:
            rules.update(oov_signals({CHAR: blocks[0][2], WORD: blocks[1][2]}))
        parts.append(runtime.rules(rules))
        return np.concatenate([c for c, _ in parts]), np.concatenate([v for _, v in parts])

    @functools.cached_property
    def runtime(self) -> RuntimeTables:
        """The run-time path's tables, derived once (load_model builds them with the read)."""
        return RuntimeTables(self)

    @property
    def oov_features(self) -> bool:
        return bool(self.meta.get("oov_features"))

    def vectorize_blocks(
        self, blocks: Mapping[str, Counter[str]], rules: Mapping[str, float]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        columns: list[int] = []
        values: list[float] = []
        shares: dict[str, float | None] = {}
        for block, grams in blocks.items():
            cols: list[int] = []
            vals: list[float] = []
            total = outside = 0
            for gram, count in grams.items():
                col = self.index.get(f"{block}|{gram}")
                total += count
                if col is None:
                    outside += count
                else:
                    cols.append(col)
                    vals.append((1.0 + math.log(count)) * float(self.idf[col]))
            shares[block] = outside / total if total else None
            norm = math.sqrt(sum(v * v for v in vals))
            if norm > 0:
                scale = self.block_weights.get(block, 1.0) / norm
                columns.extend(cols)
                values.extend(v * scale for v in vals)
        rule_weight = self.block_weights.get(RULES, 1.0)
        if self.oov_features:
            rules = {**rules, **oov_signals(shares)}
        for name, value in rules.items():
            col = self.index.get(f"{RULES}|{name}")
            if col is not None and value:
                columns.append(col)
                values.append(value * rule_weight)
        return np.asarray(columns, dtype=np.int64), np.asarray(values, dtype=np.float64)

    def probabilities(self, head_name: str, inputs: Inputs) -> dict[str, float]:
        head = self.heads[head_name]
        columns, values = self.vectorize(inputs)
        logits = values @ self.runtime.weights(head_name)[columns] + head.bias
        probs = head.decide(logits, columns, values, lambda: embed(inputs.message))
        return {c: float(p) for c, p in zip(head.classes, probs, strict=True)}


class RuntimeTables:
    """What the run-time path derives from a model once: each block's vocabulary keyed
    by the bare gram (no "<block>|" string to build per gram), the IDF in float64,
    each head's weights as vocabulary x classes in float64 (a row per matched column),
    and the remembered text blocks."""

    def __init__(self, model: JudgeModel):
        self.model = model
        self.index: dict[str, dict[str, int]] = {}
        for name, col in model.index.items():
            block, _, gram = name.partition("|")
            self.index.setdefault(block, {})[gram] = col
        self.idf = model.idf.astype(np.float64)
        self.rule_weight = model.block_weights.get(RULES, 1.0)
        self._weights = {
            name: np.ascontiguousarray(head.weights.T, dtype=np.float64) for name, head in model.heads.items()
        }
        self.block = memo(self._block)

    def weights(self, head: str) -> npt.NDArray[np.float64]:
        return self._weights[head]

    def _block(self, block: str, text: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], float | None]:
        """One text block's part of the vector: TF-IDF (sublinear tf) of the grams in the
        vocabulary, L2-normalised over them, times the block's weight (vectorize_blocks), and
        the share of the text's gram occurrences outside the vocabulary (None: no grams)."""
        vocabulary = self.index.get(block, {})
        # Counted in C: every gram's column, None for grams outside the vocabulary.
        grams = _BLOCK_GRAMS[block](text)
        counts: Counter[int | None] = Counter(map(vocabulary.get, grams))
        outside = counts.pop(None, 0)
        share = outside / len(grams) if grams else None
        if not counts:
            return _EMPTY_COLUMNS, _EMPTY_VALUES, share
        columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        values = (1.0 + np.log(tf)) * self.idf[columns]
        norm = math.sqrt(float(values @ values))
        values *= self.model.block_weights.get(block, 1.0) / norm
        columns.flags.writeable = False  # shared by every caller of the memo
        values.flags.writeable = False
        return columns, values, share

    def rules(self, rules: Mapping[str, float]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        vocabulary = self.index.get(RULES, {})
        columns: list[int] = []
        values: list[float] = []
        for name, value in rules.items():
            col = vocabulary.get(name)
            if col is not None and value:
                columns.append(col)
                values.append(value * self.rule_weight)
        return np.asarray(columns, dtype=np.int64), np.asarray(values, dtype=np.float64)


_EMPTY_COLUMNS = np.zeros(0, dtype=np.int64)
_EMPTY_VALUES = np.zeros(0, dtype=np.float64)
_EMPTY_COLUMNS.flags.writeable = False
_EMPTY_VALUES.flags.writeable = False


def save_model(path: Path, model: JudgeModel) -> None:
    vocabulary = ["" for _ in range(len(model.index))]
    for name, col in model.index.items():
        vocabulary[col] = name
    if any("\n" in name for name in vocabulary):
        raise ValueError("a feature name holds a newline")
    arrays: dict[str, npt.NDArray[np.generic]] = {
        "vocabulary": np.frombuffer("\n".join(vocabulary).encode("utf-8"), dtype=np.uint8),
        "idf": model.idf.astype(np.float32),
        "meta": np.frombuffer(
            json.dumps(
                {"format": FORMAT, "block_weights": dict(model.block_weights), **model.meta},
                sort_keys=True,
                ensure_ascii=False,
            ).encode("utf-8"),
            dtype=np.uint8,
        ),
    }
    for name, head in model.heads.items():
        arrays[f"{name}.classes"] = np.frombuffer("\n".join(head.classes).encode(), dtype=np.uint8)
        # float16: a weight's fourth significant digit changes no decision, and it halves the file.
        arrays[f"{name}.weights"] = head.weights.astype(np.float16)
        arrays[f"{name}.bias"] = head.bias.astype(np.float64)
        if head.hidden is not None:
            h = head.hidden
            arrays[f"{name}.hidden.columns"] = h.columns.astype(np.int32)
            arrays[f"{name}.hidden.w1"], arrays[f"{name}.hidden.w1_scale"] = _int8(h.w1)
            arrays[f"{name}.hidden.b1"] = h.b1.astype(np.float32)
            arrays[f"{name}.hidden.w2"] = h.w2.astype(np.float32)
            arrays[f"{name}.hidden.b2"] = h.b2.astype(np.float64)
            arrays[f"{name}.hidden.share"] = np.array([h.share], dtype=np.float64)
        if head.second is not None:
            second = head.second
            arrays[f"{name}.second.weights"] = second.weights.astype(np.float16)
            arrays[f"{name}.second.bias"] = second.bias.astype(np.float64)
            arrays[f"{name}.second.settings"] = np.array([second.embed_weight, second.route_below], dtype=np.float64)
    with path.open("wb") as out:
        np.savez_compressed(out, **arrays)  # type: ignore[arg-type]


def read_model(path: Path) -> JudgeModel:
    try:
        with np.load(path, allow_pickle=False) as data:
            vocabulary = bytes(data["vocabulary"]).decode("utf-8").split("\n")
            meta = json.loads(bytes(data["meta"]).decode("utf-8"))
            if meta.get("format") != FORMAT:
                raise ModelError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
            heads = {}
            for key in data.files:
                if key.endswith(".classes"):
                    name = key.removesuffix(".classes")
                    hidden = None
                    if f"{name}.hidden.w1" in data.files:
                        hidden = Hidden(
                            columns=data[f"{name}.hidden.columns"].astype(np.int64),
                            w1=dequantize(data[f"{name}.hidden.w1"], data[f"{name}.hidden.w1_scale"]),
                            b1=data[f"{name}.hidden.b1"].astype(np.float64),
                            w2=data[f"{name}.hidden.w2"].astype(np.float64),
                            b2=data[f"{name}.hidden.b2"].astype(np.float64),
                            share=float(data[f"{name}.hidden.share"][0]),
                        )
                    second = None
                    if f"{name}.second.weights" in data.files:
                        embed_weight, route_below = data[f"{name}.second.settings"].tolist()
                        second = Second(
                            weights=data[f"{name}.second.weights"],
                            bias=data[f"{name}.second.bias"].astype(np.float64),
                            embed_weight=float(embed_weight),
                            route_below=float(route_below),
                        )
                    heads[name] = Head(
                        classes=tuple(bytes(data[key]).decode().split("\n")),
                        weights=data[f"{name}.weights"],
                        bias=data[f"{name}.bias"].astype(np.float64),
                        hidden=hidden,
                        second=second,
                    )
            idf = data["idf"].astype(np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot read the offline judge's model {path}: {exc}") from exc
    block_weights = {str(k): float(v) for k, v in meta.pop("block_weights").items()}
    return JudgeModel({name: i for i, name in enumerate(vocabulary)}, idf, block_weights, heads, meta)


def _int8(w1: npt.NDArray[np.floating[Any]]) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """w1 as the artefact keeps it: int8, and a float32 scale per row (its largest weight
    is +-127)."""
    scale = np.abs(w1).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    return np.round(w1 / scale[:, None]).astype(np.int8), scale.astype(np.float32)


def quantize(w1: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
    """w1 as it reads back from the artefact: training returns this, so a fresh model
    decides as the shipped one (and writing it again gives the same bytes)."""
    return dequantize(*_int8(w1))


def dequantize(q: npt.NDArray[np.int8], scale: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = q.astype(np.float32) * scale.astype(np.float32)[:, None]
    return out


@functools.cache
def load_model() -> JudgeModel:
    """The shipped artefact, read once per process, with its run-time tables."""
    model = read_model(ARTEFACT_PATH)
    _ = model.runtime
    if any(head.second is not None for head in model.heads.values()):
        try:
            load_encoder()
        except EncoderError as exc:
            raise ModelError(str(exc)) from exc
    return model


OOV_FEATURES = ("oov_c", "oov_w")


def oov_signals(shares: Mapping[str, float | None]) -> dict[str, float]:
    """The share of the message's character and word n-gram occurrences outside the
    vocabulary (a guardrail-only feature: unseen words are what off-topic messages share)."""
    out: dict[str, float] = {}
    for block, name in ((CHAR, "oov_c"), (WORD, "oov_w")):
        share = shares.get(block)
        if share is not None:
            out[name] = share
    return out


def rule_feature_names(features: Sequence[Mapping[str, float]]) -> list[str]:
    return sorted({name for f in features for name in f})
