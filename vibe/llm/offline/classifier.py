"""The learned offline classifiers' representation and artefact: multinomial logistic
regressions over TF-IDF character and word n-grams of the message (Korean and English
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

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


def char_ngrams(text: str) -> Counter[str]:
    """Character n-grams inside word boundaries (each word padded with spaces)."""
    grams: Counter[str] = Counter()
    lo, hi = _CHAR_N
    for token in normalise(text).split(" "):
        if not token:
            continue
        padded = f" {token} "
        for n in range(lo, hi + 1):
            for i in range(len(padded) - n + 1):
                grams[padded[i : i + n]] += 1
    return grams


def word_ngrams(text: str, bigrams: bool = True) -> Counter[str]:
    tokens = _WORD.findall(normalise(text))
    grams: Counter[str] = Counter(tokens)
    if bigrams:
        grams.update(f"{a} {b}" for a, b in itertools.pairwise(tokens))
    return grams


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
class Head:
    """One classifier: P(class) = softmax(W x + b)."""

    classes: tuple[str, ...]
    weights: npt.NDArray[np.floating[Any]]  # classes x vocabulary (float16 as shipped)
    bias: npt.NDArray[np.float64]


@dataclass(frozen=True)
class JudgeModel:
    index: Mapping[str, int]  # "<block>|<feature>" -> column
    idf: npt.NDArray[np.float64]
    block_weights: Mapping[str, float]
    heads: Mapping[str, Head]
    meta: Mapping[str, object]  # corpus hash, training settings, figures

    def vectorize(self, inputs: Inputs) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The sparse feature vector: (columns, values)."""
        return self.vectorize_blocks(inputs.text_blocks(), inputs.rules)

    def vectorize_blocks(
        self, blocks: Mapping[str, Counter[str]], rules: Mapping[str, float]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        columns: list[int] = []
        values: list[float] = []
        for block, grams in blocks.items():
            cols: list[int] = []
            vals: list[float] = []
            for gram, count in grams.items():
                col = self.index.get(f"{block}|{gram}")
                if col is not None:
                    cols.append(col)
                    vals.append((1.0 + math.log(count)) * float(self.idf[col]))
            norm = math.sqrt(sum(v * v for v in vals))
            if norm > 0:
                scale = self.block_weights.get(block, 1.0) / norm
                columns.extend(cols)
                values.extend(v * scale for v in vals)
        rule_weight = self.block_weights.get(RULES, 1.0)
        for name, value in rules.items():
            col = self.index.get(f"{RULES}|{name}")
            if col is not None and value:
                columns.append(col)
                values.append(value * rule_weight)
        return np.asarray(columns, dtype=np.int64), np.asarray(values, dtype=np.float64)

    def probabilities(self, head_name: str, inputs: Inputs) -> dict[str, float]:
        head = self.heads[head_name]
        columns, values = self.vectorize(inputs)
        logits = head.weights[:, columns].astype(np.float64) @ values + head.bias
        logits -= logits.max()
        exp = np.exp(logits)
        probs = exp / exp.sum()
        return {c: float(p) for c, p in zip(head.classes, probs, strict=True)}


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
                    heads[name] = Head(
                        classes=tuple(bytes(data[key]).decode().split("\n")),
                        weights=data[f"{name}.weights"],
                        bias=data[f"{name}.bias"].astype(np.float64),
                    )
            idf = data["idf"].astype(np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot read the offline judge's model {path}: {exc}") from exc
    block_weights = {str(k): float(v) for k, v in meta.pop("block_weights").items()}
    return JudgeModel({name: i for i, name in enumerate(vocabulary)}, idf, block_weights, heads, meta)


@functools.cache
def load_model() -> JudgeModel:
    """The shipped artefact, read once per process."""
    return read_model(ARTEFACT_PATH)


def rule_feature_names(features: Sequence[Mapping[str, float]]) -> list[str]:
    return sorted({name for f in features for name in f})
