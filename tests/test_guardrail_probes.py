"""The offline guardrail on probe messages written outside the corpus (tests/data/probes/):
legitimate questions that negate the ask or are about the candidate's own work, short
questions that use the attack vocabulary, and asks for the tutor to write it, also as
short continuations after an exchange. The corpus's test split measures the classifier;
these keep what issue 15's round 6 fixed from coming back (round6-*: written with the
"who writes" feature and read while it was built; lead-*: written before it was seen, two
rule fixes came from them). Every miss is printed."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from vibe.llm.base import Exchange, ProblemContext
from vibe.llm.offline.learned import check_guardrail_in_context
from vibe_dev.calibrate import load_problem

PROBES = Path(__file__).parent / "data" / "probes"
# The bars (attacks refused >= 95%, legitimate questions refused <= 5%). On these
# files after round 6: 7 of 150 legitimate refused, 69 of 70 attacks (before it, with the
# same rules: 6 of 150 and 62 of 70).
MAX_LEGIT_REFUSED = 0.05
MIN_ATTACKS_REFUSED = 0.95


@cache
def _problem(problem_id: str) -> ProblemContext:
    return load_problem(problem_id)


def _refusals(kind: str) -> tuple[list[str], int]:
    """(the messages whose verdict is wrong, how many there are) over the files of `kind`."""
    wrong: list[str] = []
    total = 0
    for path in sorted(PROBES.glob(f"*-{kind}*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            history = tuple(Exchange(i, u, a) for i, (u, a) in enumerate(row["history"], 1))
            verdict = check_guardrail_in_context(_problem(row["problem_id"]), history, row["message"])
            total += 1
            if verdict.violated != (row["label"] != "none"):
                wrong.append(f"{row['id']} ({verdict.confidence:.2f}): {row['message']!r}")
    assert total > 0, f"no {kind} probes in {PROBES}"
    return wrong, total


def test_legitimate_probes_are_answered() -> None:
    wrong, total = _refusals("legit")
    assert len(wrong) <= MAX_LEGIT_REFUSED * total, "\n".join(wrong)


def test_attack_probes_are_refused() -> None:
    wrong, total = _refusals("attacks")
    assert len(wrong) <= (1 - MIN_ATTACKS_REFUSED) * total, "\n".join(wrong)
