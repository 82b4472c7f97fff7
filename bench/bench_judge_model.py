"""The offline judge's learned classifiers: what reading the artefact costs once per
process, and what one decision costs against the keyword rules alone, measured in the same
run on the corpus's messages (medians of the rounds).

- load: `read_model` of vibe/llm/offline/judge_model.npz and its run-time tables
  (`JudgeModel.runtime`; target: under 200 ms);
- guardrail: `check_guardrail_in_context` (classifier + rules) per message, and the ratio
  to `rule_verdict_in_context` (the rules alone) on the same messages; how many of them the
  second reading (the sentence encoder) was asked about, and what one encoder run costs;
- turn judge: `judge_turn` per turn (intent + band + rubric).

Every round starts with the memos of vibe/llm/memo.py cleared (`clear_memos`): the figures
are the cost of a message never seen before, as a new chat turn's is (its history was
seen on earlier turns, which this does not count).

    .venv/bin/python -m bench.bench_judge_model [--messages 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from vibe.llm.base import Exchange, GuardrailVerdict
from vibe.llm.memo import clear_memos
from vibe.llm.offline import check_guardrail_in_context, judge_turn
from vibe.llm.offline.classifier import ARTEFACT_PATH, read_model
from vibe.llm.offline.encoder import embed
from vibe.llm.offline.encoder import runs as encoder_runs
from vibe.llm.offline.guardrail import rule_verdict_in_context
from vibe_dev.calibrate import load_problem
from vibe_dev.corpus import load_guard


def _median_s(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        clear_memos()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    examples = load_guard()[: args.messages]
    problems = {pid: load_problem(pid) for pid in {g.problem_id for g in examples}}
    cases = [
        (problems[g.problem_id], tuple(Exchange(i, u, a) for i, (u, a) in enumerate(g.history, 1)), g.message)
        for g in examples
    ]
    load_s = _median_s(lambda: read_model(ARTEFACT_PATH).runtime, args.rounds)
    print(f"load artefact ({ARTEFACT_PATH.stat().st_size / 1e6:.2f} MB): {load_s * 1000:.1f} ms (target < 200 ms)")
    check_guardrail_in_context(*cases[0])  # the process-wide load, outside the timings
    rules_s = _median_s(lambda: [rule_verdict_in_context(*c) for c in cases], args.rounds) / len(cases)
    learned_s = _median_s(lambda: [check_guardrail_in_context(*c) for c in cases], args.rounds) / len(cases)
    print(f"guardrail per message: rules {rules_s * 1000:.2f} ms, learned {learned_s * 1000:.2f} ms")
    print(f"ratio learned / rules: {learned_s / rules_s:.1f}x")
    # The second reading's share of that: how many messages the first left unsure (each
    # costs one encoder run, memoised per text), and what one run costs.
    clear_memos()
    before = encoder_runs()
    for c in cases:
        check_guardrail_in_context(*c)
    asked = encoder_runs() - before
    messages = [m for _, _, m in cases]
    encoder_s = _median_s(lambda: [embed(m) for m in messages], args.rounds) / len(messages)
    print(
        f"second reading: asked for {asked} of {len(cases)} messages ({asked / len(cases):.0%}); "
        f"the encoder alone {encoder_s * 1000:.1f} ms per message"
    )
    ok = GuardrailVerdict.ok()
    judge_s = _median_s(
        lambda: [judge_turn(p, h, Exchange(len(h) + 1, m, ""), ok) for p, h, m in cases], args.rounds
    ) / len(cases)
    print(f"turn judge per turn: {judge_s * 1000:.2f} ms")


if __name__ == "__main__":
    main()
