"""The offline turn judge on candidate turns written outside the corpus
(tests/data/probes/turns-unseen-*.jsonl). In issue 15's round 7 a writer who had read only the
label definitions (corpus/README.md) and the rubrics wrote them before seeing any corpus line or
the judge's code: typos, terse asks, pasted tracebacks, loose "optimize"/"test", follow-ups that do
not quote the tutor, new questions after history. The second file holds 24 boundary turns, written
after the first results were seen. 12 of the 104 are near-copies of corpus lines (character
3-gram cosine >= 0.75), and one writer labelled them all, so read the figures as +-4 turns.
The third file (70 turns: 40 English, 22 Korean, 8 mixed, ten of each intent) was written in
round 14 by a helper who read only the label definitions and the problem statements, none of
the project's code, corpus or tests; 6 of its lines (short ones such as "hint pls", "한국어로")
are near-copies of corpus lines. Played as the services do (guardrail, then the judge) it read
intent 69 of 70 and band 60 of 70 when written.

The bars are the issue's goals for unseen turns played through the gateway: intent >= 85%,
band agreement >= 80%. When written, the turns scored intent 99 of 104 and band 88 of 104.
Every miss is printed."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from vibe.llm.base import Exchange, GuardrailVerdict, ProblemContext
from vibe.llm.offline import judge_turn
from vibe_dev.calibrate import load_problem

PROBES = Path(__file__).parent / "data" / "probes"
MIN_INTENT = 0.85
MIN_BAND = 0.80


@cache
def _problem(problem_id: str) -> ProblemContext:
    return load_problem(problem_id)


def _band(score: float) -> str:
    return "low" if score < 40 else "mid" if score < 70 else "high"


@cache
def _judged() -> tuple[tuple[str, bool, bool], ...]:
    """(what the turn was judged as, intent right, band right) for every unseen turn."""
    out = []
    for path in sorted(PROBES.glob("turns-unseen-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            history = tuple(Exchange(i, u, a) for i, (u, a) in enumerate(row["history"], 1))
            judged = judge_turn(
                _problem(row["problem_id"]),
                history,
                Exchange(len(history) + 1, row["prompt"], ""),
                GuardrailVerdict.ok(),
            )
            band = _band(judged.score)
            shown = (
                f"{row['id']}: {row['intent']}/{row['band']} judged {judged.intent.value}/{band} "
                f"({judged.score:.1f}): {row['prompt'][:100]!r}"
            )
            out.append((shown, judged.intent.value == row["intent"], band == row["band"]))
    assert len(out) >= 100, f"expected the unseen turns in {PROBES}"
    return tuple(out)


def test_unseen_turns_get_their_intent() -> None:
    judged = _judged()
    wrong = [shown for shown, intent_ok, _ in judged if not intent_ok]
    assert len(wrong) <= (1 - MIN_INTENT) * len(judged), "\n".join(wrong)


def test_unseen_turns_get_their_band() -> None:
    judged = _judged()
    wrong = [shown for shown, _, band_ok in judged if not band_ok]
    assert len(wrong) <= (1 - MIN_BAND) * len(judged), "\n".join(wrong)
