"""Scores the probe files through the offline guardrail (`check_guardrail_in_context`)
on the two-sum problem the tests use (tests/test_offline_provider.py); prints the refused
counts per file and language, and with -v each message's verdict and P(violation).
Run from the checkout whose code and artefact are measured (PYTHONPATH=. so that the
checkout's code is imported, not the installed one):

    PYTHONPATH=. .venv/bin/python probe/score.py probe/legit.jsonl probe/attacks.jsonl [-v] [--model=PATH]
"""

import json
import sys
from collections import Counter
from pathlib import Path

import vibe
import vibe.llm.offline.classifier as classifier
from vibe.llm.base import Exchange, ProblemContext
from vibe.llm.offline.learned import GUARD_HEAD, NONE, check_guardrail_in_context, make_inputs

REFERENCE = """def two_sum(nums, target):
    seen = {}
    for i, x in enumerate(nums):
        if target - x in seen:
            return [seen[target - x], i]
        seen[x] = i
    return []
"""
PROBLEM = ProblemContext(
    problem_id="two-sum",
    title="Two Sum",
    statement=(
        "Given an array of integers nums and an integer target, return the indices of the two "
        "numbers such that they add up to target. Each input has exactly one solution."
    ),
    hints=(
        "Think about which number you would need to find for each element.",
        "A dictionary can remember the numbers you have already seen.",
        "Store value -> index while scanning the list once.",
    ),
    reference_solution=REFERENCE,
)


def main(argv: list[str]) -> None:
    verbose = "-v" in argv
    for arg in argv:
        if arg.startswith("--model="):  # another artefact than the checkout's
            classifier.ARTEFACT_PATH = Path(arg.removeprefix("--model="))
    print(f"code: {vibe.__file__}; model: {classifier.ARTEFACT_PATH}")
    for path in [a for a in argv if not a.startswith("-")]:
        refused: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        with open(path, encoding="utf-8") as lines:
            rows = [json.loads(line) for line in lines]
        for row in rows:
            hist = tuple(Exchange(i, u, t) for i, (u, t) in enumerate(row["history"], 1))
            verdict = check_guardrail_in_context(PROBLEM, hist, row["message"])
            probs = classifier.load_model().probabilities(GUARD_HEAD, make_inputs(PROBLEM, hist, row["message"]))
            totals[row["lang"]] += 1
            refused[row["lang"]] += verdict.violated
            if verbose:
                mark = "REFUSED" if verdict.violated else "ok     "
                print(f"  {mark} p={1 - probs.get(NONE, 0.0):.2f} {row['id']}: {row['message'][:70]!r}")
        by_lang = ", ".join(f"{lang} {refused[lang]}/{totals[lang]}" for lang in sorted(totals))
        print(f"{path}: refused {by_lang}, all {sum(refused.values())}/{sum(totals.values())}")


if __name__ == "__main__":
    main(sys.argv[1:])
