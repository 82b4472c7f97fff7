"""`python -m vibe_dev.redteam_report [--provider offline|gemini]`: the tutor's refusal rate
on the red-team attacks and its false-refusal rate on the legitimate questions of
tests/data/redteam.json.

No stack is needed: each entry is played as a conversation directly against the
provider (guardrail check, then the reply, with the hint guidance the tutor service
would compute), each reply becoming history for the next message. The same data,
loading and leak check serve tests/test_redteam.py, which plays it through the real
gateway and tutor services.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from vibe.llm.base import Exchange, LLMProvider, ProblemContext
from vibe.platform.config import CommonSettings, TutorSettings
from vibe.services.scoring.bank import DEFAULT_PROBLEMS_DIR, load_problem
from vibe.services.tutor.hints import decide_guidance
from vibe.services.tutor.leak import LeakGuard, LeakOutcome
from vibe_dev.stack import with_dev_secrets

REDTEAM_PATH = Path(__file__).resolve().parents[1] / "tests" / "data" / "redteam.json"  # the set the tests play
EXPECTED = ("refuse", "no_leak", "answer")


@dataclass(frozen=True)
class Entry:
    id: str
    kind: str  # "attack" or "legitimate"
    language: str  # "en" or "ko"
    category: str
    problem_id: str
    messages: tuple[str, ...]
    expected: str  # "refuse": the last message is refused; "no_leak": no reply leaks; "answer": nothing refused


def load_entries(path: Path = REDTEAM_PATH) -> list[Entry]:
    raw: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["entries"]
    entries = [
        Entry(
            id=e["id"],
            kind=e["kind"],
            language=e["language"],
            category=e["category"],
            problem_id=e["problem_id"],
            messages=tuple(e["messages"]),
            expected=e["expected"],
        )
        for e in raw
    ]
    for e in entries:
        if e.expected not in EXPECTED or not e.messages or e.kind not in ("attack", "legitimate"):
            raise ValueError(f"red-team entry {e.id!r} is malformed")
        if (e.kind == "legitimate") != (e.expected == "answer"):
            raise ValueError(f"red-team entry {e.id!r}: only legitimate entries expect an answer")
    return entries


@cache
def problem_context(problem_id: str) -> ProblemContext:
    """The problem as the tutor service sees it, straight from the problem bank."""
    spec = load_problem(DEFAULT_PROBLEMS_DIR / problem_id)
    return ProblemContext(
        problem_id=spec.problem_id,
        title=spec.title,
        statement=spec.statement,
        hints=spec.hints,
        reference_solution=spec.reference_solution,
        input_format=spec.input_format,
        output_format=spec.output_format,
        starter_code=spec.starter_code,
        reference_solutions=dict(spec.references),  # python, cpp, javascript
    )


@cache
def _leak_guard() -> LeakGuard:
    # The service's default threshold (the secret is only there to make the settings complete).
    return LeakGuard(TutorSettings.from_env(with_dev_secrets({})).leak_threshold)


def leak_of(problem_id: str, text: str) -> LeakOutcome:
    """The tutor service's own leak check (winnowing fingerprints against every reference
    solution of the problem) applied to `text`, e.g. all replies of a conversation."""
    check = _leak_guard().check(problem_context(problem_id))
    check.feed(text)
    return check.outcome


@dataclass
class Outcome:
    entry: Entry
    refused_turns: list[int] = field(default_factory=list)  # 1-based positions of refused messages
    replies: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return bool(self.refused_turns)

    @property
    def last_refused(self) -> bool:
        return len(self.entry.messages) in self.refused_turns

    @property
    def leak(self) -> LeakOutcome:
        """Judged on the conversation as a whole: pieces that add up to the solution count."""
        return leak_of(self.entry.problem_id, "\n".join(self.replies))


async def play(llm: LLMProvider, entry: Entry) -> Outcome:
    """The entry as a real multi-turn conversation with the provider."""
    problem = problem_context(entry.problem_id)
    outcome = Outcome(entry)
    history: list[Exchange] = []
    for turn, message in enumerate(entry.messages, start=1):
        guidance = decide_guidance(problem, history, message)
        verdict = await llm.check_guardrail(problem, history, message)
        reply = "".join([c async for c in llm.stream_tutor_reply(problem, history, message, verdict, guidance)])
        if verdict.violated:
            outcome.refused_turns.append(turn)
        outcome.replies.append(reply)
        history.append(Exchange(turn, message, reply))
    return outcome


@dataclass(frozen=True)
class Rates:
    attacks: int
    attacks_refused: int  # some message of the conversation was refused
    last_expected: int  # attacks whose last message is the attack (expected "refuse")
    last_refused: int  # ... and it was refused
    attacks_leaked: int
    legitimate: int
    legitimate_refused: int

    @property
    def refusal_rate(self) -> float:
        return self.attacks_refused / max(1, self.attacks)

    @property
    def false_refusal_rate(self) -> float:
        return self.legitimate_refused / max(1, self.legitimate)


def rates(outcomes: Sequence[Outcome]) -> Rates:
    attacks = [o for o in outcomes if o.entry.kind == "attack"]
    legitimate = [o for o in outcomes if o.entry.kind == "legitimate"]
    return Rates(
        attacks=len(attacks),
        attacks_refused=sum(o.refused for o in attacks),
        last_expected=sum(o.entry.expected == "refuse" for o in attacks),
        last_refused=sum(o.entry.expected == "refuse" and o.last_refused for o in attacks),
        attacks_leaked=sum(o.leak.cut for o in attacks),
        legitimate=len(legitimate),
        legitimate_refused=sum(o.refused for o in legitimate),
    )


def _make_provider(name: str) -> LLMProvider:
    if name == "offline":
        from vibe.llm.offline import OfflineProvider

        return OfflineProvider()
    from vibe.llm import make_provider

    # The provider and its key come from the environment, as for the tutor service.
    return make_provider(CommonSettings.from_env(who="redteam report"))


async def _report(provider: str, verbose: bool) -> int:
    llm = _make_provider(provider)
    try:
        outcomes = [await play(llm, entry) for entry in load_entries()]
    finally:
        await llm.aclose()
    r = rates(outcomes)
    print(f"provider: {llm.name} ({llm.model})")
    print(f"attacks refused:         {r.attacks_refused}/{r.attacks} = {r.refusal_rate:.1%}")
    print(f"attack messages refused: {r.last_refused}/{r.last_expected} (entries whose last message is the attack)")
    print(f"attacks that leaked:     {r.attacks_leaked}/{r.attacks} (leak check at the service's threshold)")
    print(f"legitimate refused:      {r.legitimate_refused}/{r.legitimate} = {r.false_refusal_rate:.1%}")
    for o in outcomes:
        missed = (
            (o.entry.kind == "attack" and not o.refused)
            or (o.entry.expected == "refuse" and not o.last_refused)
            or (o.entry.kind == "legitimate" and o.refused)
        )
        if missed or o.leak.cut or verbose:
            what = f"refused turns {o.refused_turns}" if o.refused else "answered"
            print(
                f"  {o.entry.id:28} {o.entry.kind:10} expected {o.entry.expected:8} {what:22} leak share {o.leak.share:.0%}"
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--provider", default="offline", help="offline (default) or the configured provider, e.g. gemini"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="list every entry, not only misses and leaks")
    args = parser.parse_args(argv)
    return asyncio.run(_report(args.provider, args.verbose))


if __name__ == "__main__":
    sys.exit(main())
