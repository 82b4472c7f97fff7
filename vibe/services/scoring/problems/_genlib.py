"""Shared helper for the per-problem ``gen.py`` scripts (build time only, never imported by the
service).  It writes ``tests/NN.in``, produces ``tests/NN.out`` by running ``reference.py``,
cross-checks the reference against a brute force on the small tests, and writes
``tests/tests.json``.  Deterministic: every generator uses a fixed ``random.Random`` seed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_TEST_BYTES = 2 * 1024 * 1024


@dataclass
class Test:
    input: str
    hidden: bool
    large: bool = False


def build(problem_dir: Path, tests: list[Test], brute: Callable[[str], str], brute_max_bytes: int = 20_000) -> None:
    tdir = problem_dir / "tests"
    tdir.mkdir(exist_ok=True)
    for old in tdir.iterdir():
        old.unlink()
    listing = []
    for i, t in enumerate(tests, 1):
        tid = f"{i:02d}"
        data = t.input if t.input.endswith("\n") else t.input + "\n"
        assert len(data.encode()) < MAX_TEST_BYTES, (tid, len(data))
        (tdir / f"{tid}.in").write_text(data)
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, str(problem_dir / "reference.py")],
            input=data.encode(),
            capture_output=True,
            check=True,
        ).stdout
        elapsed = time.perf_counter() - start
        (tdir / f"{tid}.out").write_bytes(out)
        checked = ""
        if len(data) <= brute_max_bytes:
            expected = brute(data)
            assert expected.split() == out.decode().split(), (tid, expected[:200], out[:200])
            checked = " (brute-force verified)"
        print(f"{problem_dir.name} {tid}: {len(data)} bytes, reference {elapsed * 1000:.0f} ms{checked}")
        entry = {"id": tid, "hidden": t.hidden}
        if t.large:
            entry["large"] = True
        listing.append(entry)
    (tdir / "tests.json").write_text(json.dumps(listing, indent=2) + "\n")
