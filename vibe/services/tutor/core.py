"""The tutor's decisions: check the message against the guardrail, then stream a
Socratic reply (or an educational refusal) written with the conversation so far."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from vibe.llm.base import Exchange, GuardrailVerdict, LLMProvider, LLMUnavailable, ProblemContext, TutorGuidance
from vibe.llm.offline import off_loop
from vibe.llm.usage import UsageMeter, metered
from vibe.llm.usage_store import PHASE_CHAT, save_calls
from vibe.platform.errors import InvalidArgument, Unavailable
from vibe.services.tutor.hints import DEFAULT_LOW_EFFORT_LIMIT, SignsCache, plan_hints
from vibe.services.tutor.leak import LeakCheck, LeakGuard, LeakOutcome, cut_notice
from vibe.services.tutor.memory import ConversationMemory
from vibe.shared.records import load_exchanges, load_hidden_tests, load_problem_context

log = logging.getLogger(__name__)

_CUT_OFF = "\n\n(I have to stop here: this request is outside the test rules, so this turn scores 0. {reason})"


@dataclass(frozen=True)
class Reply:
    """A turn's reply as it streams. `verdict` is settled and `leak` final by the time
    `chunks` ends."""

    verdict: asyncio.Future[GuardrailVerdict]
    chunks: AsyncGenerator[str, None]
    leak: LeakCheck


class Tutor:
    def __init__(
        self,
        db: asyncpg.Pool,
        llm: LLMProvider,
        *,
        low_effort_limit: int = DEFAULT_LOW_EFFORT_LIMIT,
        leak_guard: LeakGuard,
        memory: ConversationMemory | None = None,
    ):
        self.db = db
        self.llm = llm
        self.low_effort_limit = low_effort_limit  # TUTOR_LOW_EFFORT_LIMIT: see vibe.services.tutor.hints
        self.leak_guard = leak_guard  # TUTOR_LEAK_THRESHOLD: see vibe.services.tutor.leak
        self.memory = memory  # TUTOR_HISTORY_TOKEN_BUDGET: see vibe.services.tutor.memory; None = whole history
        self._problems: dict[str, ProblemContext] = {}  # problems do not change while we run
        self._hidden: dict[str, tuple[str, ...]] = {}
        self._signs = SignsCache()  # each earlier message is classified once, not once per turn

    async def _problem(self, problem_id: str) -> ProblemContext:
        if problem_id not in self._problems:
            self._problems[problem_id] = await load_problem_context(self.db, problem_id)
            self._hidden[problem_id] = await load_hidden_tests(self.db, problem_id)
        return self._problems[problem_id]

    @contextlib.asynccontextmanager
    async def reply(self, session_id: str, turn: int, problem_id: str, message: str) -> AsyncGenerator[Reply, None]:
        """The reply to one turn and its guardrail verdict. On the way out, however the
        reply ended, the LLM requests are closed and the turn's LLM usage is stored."""
        with metered() as meter:
            verdict: asyncio.Future[GuardrailVerdict] | None = None
            try:
                started = await self.start_reply(session_id, turn, problem_id, message)
                verdict = started.verdict
                async with contextlib.aclosing(_unavailable_as_service_error(started.chunks)) as stream:
                    yield replace(started, chunks=stream)
            finally:
                if verdict is not None:
                    await _settle(verdict)
                # Shielded: a candidate leaving must not lose the record of what was spent.
                await asyncio.shield(self._save_usage(session_id, turn, meter))

    async def start_reply(self, session_id: str, turn: int, problem_id: str, message: str) -> Reply:
        """The guardrail check (running) and the reply stream for `message`, leak-checked."""
        if not session_id or not problem_id:
            raise InvalidArgument("session_id and problem_id are required")
        if turn < 1:
            raise InvalidArgument(f"turn must be >= 1, got {turn}")
        if not message.strip():
            raise InvalidArgument("message is empty")
        problem = await self._problem(problem_id)
        history = await load_exchanges(self.db, session_id, before_turn=turn)
        # From the full history: the hint ladder must not restart when older turns are summarised.
        # `shown`: the rungs the candidate may have seen once this reply is out (the outbound check protects the rest).
        # The offline classifiers' sentence encoder, when the plan needs it, runs off the loop.
        guidance, shown = await off_loop(
            lambda: plan_hints(problem, history, message, low_effort_limit=self.low_effort_limit, signs=self._signs)
        )
        # The model sees the recent turns within the token budget, and a summary of the rest.
        recent = history
        if self.memory is not None:
            recall = await self.memory.recall(session_id, problem, history)
            recent = recall.history
            if recall.summary:
                guidance = replace(guidance or TutorGuidance(), memory_summary=recall.summary)
        # The guardrail reads the whole conversation (a piece-by-piece extraction spans turns).
        verdict = asyncio.ensure_future(self.llm.check_guardrail(problem, history, message))
        # One outbound check: reference solutions, our instructions, the rungs not given, hidden tests.
        leak = self.leak_guard.check(problem, rungs_shown=shown, hidden_tests=self._hidden.get(problem_id, ()))
        reply = self._guarded_reply(verdict, problem, recent, message, guidance)

        def cut(outcome: LeakOutcome) -> str:
            return cut_notice(problem, history, message, guidance, outcome.material)

        tripped: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        async def second_opinion() -> GuardrailVerdict:
            return await self.llm.check_guardrail(problem, history, message, second_opinion=True)

        final = asyncio.ensure_future(_final_verdict(verdict, tripped, second_opinion))
        return Reply(final, _leak_checked(reply, leak, cut, final, tripped), leak)

    async def _guarded_reply(
        self,
        verdict: asyncio.Future[GuardrailVerdict],
        problem: ProblemContext,
        history: Sequence[Exchange],
        message: str,
        guidance: TutorGuidance | None = None,
    ) -> AsyncGenerator[str, None]:
        """The reply, started on the bet that the message is fine (it almost always is)
        while the guardrail decides, so a model-based guardrail costs no time to first
        chunk.

        A verdict that comes first (the rules are instant) picks the reply: a violation
        gets the provider's educational refusal. A violation found by the model after
        the reply started cuts the reply off with a plain note; the turn scores 0
        either way, since the verdict travels with the end of the reply.
        """
        speculative = self.llm.stream_tutor_reply(problem, history, message, GuardrailVerdict.ok(), guidance)
        first = asyncio.ensure_future(_next_or_none(speculative))
        try:
            racing: list[asyncio.Future[Any]] = [verdict, first]
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
            if verdict.done() and verdict.result().violated:
                await _discard(first, speculative)
                async with contextlib.aclosing(
                    self.llm.stream_tutor_reply(problem, history, message, verdict.result(), guidance)
                ) as refusal:
                    async for piece in refusal:
                        yield piece
                return
            chunk = await first
            while chunk is not None:
                yield chunk
                if verdict.done() and verdict.result().violated:
                    break
                chunk = await _next_or_none(speculative)
            if (await verdict).violated:
                yield _CUT_OFF.format(reason=verdict.result().reason)
        finally:
            await _discard(first, speculative)

    async def _save_usage(self, session_id: str, turn: int, meter: UsageMeter) -> None:
        try:
            await save_calls(self.db, session_id, turn, PHASE_CHAT, meter.calls)
        except Exception:
            # Accounting must never cost the candidate their reply.
            log.exception("could not store LLM usage", extra={"session_id": session_id, "turn": turn})


async def _settle(task: asyncio.Future[GuardrailVerdict]) -> None:
    """Cancels the guardrail check if it is still running (the reply failed or the
    candidate left) and marks its outcome retrieved."""
    task.cancel()  # a no-op when it is done
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()


async def _next_or_none(stream: AsyncGenerator[str, None]) -> str | None:
    try:
        return await anext(stream)
    except StopAsyncIteration:
        return None


async def _discard(first_chunk: asyncio.Future[str | None], stream: AsyncGenerator[str, None]) -> None:
    """Drops a speculative reply: its pending first chunk, then the stream itself."""
    first_chunk.cancel()  # a no-op when it is done
    await asyncio.wait([first_chunk])  # unlike awaiting it, lets our own cancellation through
    if not first_chunk.cancelled():
        first_chunk.exception()  # its outcome no longer matters; mark it retrieved
    await stream.aclose()


async def _final_verdict(
    first: asyncio.Future[GuardrailVerdict],
    tripped: asyncio.Future[bool],
    second_opinion: Callable[[], Awaitable[GuardrailVerdict]],
) -> GuardrailVerdict:
    """The turn's verdict: the first one (the offline classifier's when it was sure, else
    the model's), unless the reply tripped the leak check while that verdict let the
    message through: the message got the solution out, so the model is asked, whatever
    the offline classifier's confidence."""
    verdict = await first
    if await tripped and not verdict.violated:
        return await second_opinion()
    return verdict


async def _leak_checked(
    chunks: AsyncGenerator[str, None],
    leak: LeakCheck,
    cut: Callable[[LeakOutcome], str],
    verdict: asyncio.Future[GuardrailVerdict],
    tripped: asyncio.Future[bool],
) -> AsyncGenerator[str, None]:
    """Each chunk goes out only once the reply so far, it included, is below the leak
    threshold. The chunk that reaches it and the rest of the reply are dropped (the
    model's request is closed at once) and `cut(outcome)` is sent in their place. The
    stream ends once the turn's `verdict` is settled (`tripped` says whether the reply
    was cut)."""
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            if leak.feed(chunk):
                log.warning(
                    "reply cut by the leak check",
                    extra={
                        "leak_share": round(leak.outcome.share, 3),
                        "leak_language": leak.outcome.language,
                        "leak_material": leak.outcome.material,
                    },
                )
                break
            yield chunk
        else:
            tripped.set_result(False)
            await asyncio.wait([verdict])
            return
    tripped.set_result(True)
    yield cut(leak.outcome)
    # The turn still gets its guardrail verdict; the cut reply no longer waits for it.
    await asyncio.wait([verdict])


async def _unavailable_as_service_error(chunks: AsyncGenerator[str, None]) -> AsyncGenerator[str, None]:
    """LLMUnavailable becomes UNAVAILABLE with a message the candidate can act on; the
    gateway then stores nothing for the turn, so sending the message again is the retry."""
    try:
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                yield chunk
    except LLMUnavailable as exc:
        raise Unavailable(f"The AI assistant is unavailable: {exc}") from exc
