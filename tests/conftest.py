"""Fixtures: every test gets its own PostgreSQL schema and Redis key prefix on the real
servers, and (when it asks for one) the four real gRPC services on port 0. What test
files import lives in tests/support/, never here."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.sandboxes import started
from tests.support.stack import MakeLLM, Stack, StartStack, running_stack
from tests.support.stack import isolated_env as isolated_env_for
from vibe.llm import make_provider
from vibe.llm.offline.encoder import use_known
from vibe.llm.resilient import ResilientProvider
from vibe.platform.config import EvaluatorSettings
from vibe.services.scoring.isolation import IsolationMode
from vibe.services.scoring.sandbox import Sandbox
from vibe_dev.fake_gemini import FakeGemini, running
from vibe_dev.scratch import drop_scratch
from vibe_dev.train_judge import CorpusEmbeddings


@pytest.fixture(autouse=True, scope="session")
def known_corpus_embeddings() -> Iterator[None]:
    """The sentence encoder's vectors of corpus messages come from the corpus's cache
    (corpus/embeddings.npz: the encoder's own numbers, which tests/test_judge_encoder.py
    checks against it), not from encoding again the thousands of messages that the tests
    walking the whole corpus send to the classifiers' second reading. Other texts, and
    the services the tests start as processes, run the encoder."""
    use_known(CorpusEmbeddings().cached)
    yield
    use_known(None)


@pytest.fixture
async def isolated_env() -> AsyncIterator[dict[str, str]]:
    """Environment for services that only touches this test's schema and keys."""
    tag = uuid.uuid4().hex[:12]
    yield isolated_env_for(tag)
    await drop_scratch((f"t_{tag}",), f"t:{tag}:")


@pytest.fixture
def start_stack(isolated_env: dict[str, str]) -> StartStack:
    """`async with start_stack(EVALUATOR_WORKERS="0") as stack:` — the four services
    with extra settings."""

    def start(**overrides: str) -> contextlib.AbstractAsyncContextManager[Stack]:
        return running_stack({**isolated_env, **overrides})

    return start


@pytest.fixture
async def stack(start_stack: StartStack) -> AsyncIterator[Stack]:
    async with start_stack() as s:
        yield s


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    """A local Gemini-compatible HTTP server (vibe_dev/fake_gemini.py) for this test."""
    async with running() as server:
        yield server


@pytest.fixture(params=[IsolationMode.NAMESPACES, IsolationMode.RLIMITS], ids=str)
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    """A started sandbox in both isolation modes, for what both promise."""
    async for s in started(request.param):
        yield s


@pytest.fixture
async def isolated() -> AsyncIterator[Sandbox]:
    """A started sandbox in the default mode, for what only it promises (namespaces, whole-run
    limits, tmpfs)."""
    async for s in started(IsolationMode.NAMESPACES):
        yield s


@pytest.fixture
def gemini(isolated_env: dict[str, str], fake: FakeGemini) -> MakeLLM:
    """`async with gemini(VIBE_LLM_RPM="15") as llm:` — a provider like a service's, on the fake server."""

    @contextlib.asynccontextmanager
    async def make(**overrides: str) -> AsyncIterator[ResilientProvider]:
        env = {**isolated_env, "VIBE_LLM_PROVIDER": "gemini", "GEMINI_API_KEY": "test-key", "GEMINI_BASE_URL": fake.url}
        llm = make_provider(EvaluatorSettings.from_env({**env, **overrides}).common)
        assert isinstance(llm, ResilientProvider)
        try:
            yield llm
        finally:
            await llm.aclose()

    return make
