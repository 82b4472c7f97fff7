"""What the two guards of issue 15 cost, as ratios against a baseline measured in the same run.

- The judge's search for text addressed to the grader (`vibe/llm/injection.py`) on a
  4000-character message (VIBE_MAX_MESSAGE_CHARS): ordinary corpus text, then inputs built
  to make regular expressions backtrack (long runs of one character or pattern: dots,
  hashes, newlines, digits, tags). The ratio worst / ordinary shows that no input makes it
  blow up (before the patterns were made linear, 2000 newlines took 166 s).
- The tutor's outbound check (`vibe/services/tutor/leak.py`) per 40-character chunk with
  the protected texts (instructions, hint rungs, hidden tests) against the code
  fingerprints alone.

    .venv/bin/python -m bench.bench_guards [--rounds 7]

Prints medians (ms or us) and the ratios.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from vibe.llm.base import ProblemContext
from vibe.llm.injection import split_grader_text
from vibe.services.scoring.bank import load_problem_bank
from vibe.services.tutor.leak import LeakCheck, LeakGuard, reference_fingerprints

REPO = Path(__file__).resolve().parents[1]
MESSAGE_CHARS = 4000
ADVERSARIAL = [".", "#", "\n", "1", " ", "\n#", "<score>", '"""', "/*", "[a ", '{"score": ', "1 점 ", "g r a d e r "]


def _median_ms(fn: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _ordinary_text() -> str:
    lines = (REPO / "corpus" / "turns-en.jsonl").read_text("utf-8").splitlines()
    text = "\n".join(json.loads(line)["prompt"] for line in lines)
    return text[:MESSAGE_CHARS]


def bench_injection(rounds: int) -> None:
    ordinary = _ordinary_text()
    base = _median_ms(lambda: split_grader_text(ordinary), rounds)
    print(f"grader-text search, {MESSAGE_CHARS} chars of ordinary corpus turns: {base:.2f} ms (median)")
    worst = 0.0
    for unit in ADVERSARIAL:
        text = (unit * (MESSAGE_CHARS // len(unit) + 1))[:MESSAGE_CHARS]
        ms = _median_ms(functools.partial(split_grader_text, text), rounds)
        worst = max(worst, ms)
        print(f"  {unit!r:>14} repeated: {ms:8.2f} ms  ratio {ms / base:6.2f}")
    print(f"worst / ordinary: {worst / base:.2f}")


def bench_outbound(rounds: int) -> None:
    spec = {p.problem_id: p for p in load_problem_bank()}["two-sum"]
    problem = ProblemContext(
        problem_id="two-sum",
        title=spec.title,
        statement=spec.statement,
        hints=spec.hints,
        reference_solution=spec.reference_solution,
        starter_code=spec.starter_code,
        reference_solutions=spec.references,
    )
    chunk = ("Consider each element once; which value would complete the pair? " * 2)[:40]

    def per_chunk_us(with_text: bool) -> float:
        if with_text:  # as the tutor runs it: instructions, the rungs after the first, the code
            check = LeakGuard(0.35).check(problem, rungs_shown=1)
        else:  # the code fingerprints alone (the check before issue 15)
            check = LeakCheck(reference_fingerprints(problem), 0.35)
        check.feed("word " * 200)
        started = time.perf_counter()
        for _ in range(2000):
            check.feed(chunk)
        return (time.perf_counter() - started) / 2000 * 1e6

    code_only = statistics.median(per_chunk_us(False) for _ in range(rounds))
    both = statistics.median(per_chunk_us(True) for _ in range(rounds))
    print(f"outbound check per 40-char chunk: code fingerprints {code_only:.1f} us, with protected texts {both:.1f} us")
    print(f"ratio with / without the text check: {both / code_only:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args, _ = parser.parse_known_args()  # `make bench` hands every benchmark the same BENCH_ARGS
    bench_injection(args.rounds)
    bench_outbound(args.rounds)


if __name__ == "__main__":
    main()
