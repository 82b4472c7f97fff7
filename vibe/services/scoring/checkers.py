"""Output checkers: does a program's output answer the test?

* ``exact``: the same lines (trailing spaces and trailing blank lines ignored);
* ``tokens``: the same whitespace-separated tokens;
* ``float``: the same tokens, numbers equal within an absolute or relative tolerance;
* ``custom``: the problem's own ``checker.py`` (for problems with several right answers), run in
  the sandbox as ``checker.py input output expected``; exit 0 = accepted, 1 = wrong answer with
  a one-line reason on stdout, anything else = a broken checker.

Every function returns ``None`` for accepted, else a short detail (<= 120 chars).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from vibe.services.scoring.languages import PYTHON
from vibe.services.scoring.sandbox import RunLimits, Sandbox

CHECKERS = ("exact", "tokens", "float", "custom")
DEFAULT_FLOAT_TOLERANCE = 1e-6
DETAIL_MAX_CHARS = 120
_CUSTOM_LIMITS = RunLimits(cpu_time_s=10, wall_time_s=20, memory_mb=512, output_bytes=4096)


class CheckerFailure(RuntimeError):
    """The problem's own checker crashed: a bug in the problem bank, not the candidate's fault."""


#: Characters of a program's output that are never shown or stored as they are: C0 controls but tab
#: and newline (NUL is refused by PostgreSQL's text; escape sequences drive terminals), DEL and C1
#: controls, and the bidirectional formatting characters (they reorder what a reviewer reads).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` (decoded output of a program or a compiler) with the characters above escaped as
    ``\\xNN`` / ``\\uNNNN``: whatever a program prints, it reaches details, reports and the
    database as visible, storable text."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def clip(text: str, limit: int = DETAIL_MAX_CHARS) -> str:
    """One detail line: whitespace runs of a multi-line text joined, unsafe characters escaped,
    at most ``limit`` characters."""
    text = printable(" ".join(text.split()) if "\n" in text else text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(tokens: list[bytes], limit: int) -> str:
    return clip(b" ".join(tokens).decode("utf-8", "replace"), limit)


def _first_difference(e: list[bytes], g: list[bytes], same: Callable[[bytes, bytes], bool]) -> str | None:
    if len(e) == len(g) and all(same(a, b) for a, b in zip(e, g, strict=True)):
        return None
    if not g:
        return clip(f"expected `{_show(e, 80)}`, got no output")
    if len(e) <= 6 and len(g) <= 6:
        return clip(f"expected `{_show(e, 50)}`, got `{_show(g, 50)}`")
    k = next((i for i, (a, b) in enumerate(zip(e, g, strict=False)) if not same(a, b)), min(len(e), len(g)))
    if k < len(e) and k < len(g):
        return clip(f"token {k + 1}: expected `{_show([e[k]], 45)}`, got `{_show([g[k]], 45)}`")
    if len(g) < len(e):
        return clip(f"output ended after {len(g)} tokens, expected {len(e)}")
    return clip(f"extra output after {len(e)} tokens: `{_show(g[len(e) : len(e) + 3], 50)}`")


def compare_tokens(expected: bytes, got: bytes) -> str | None:
    return _first_difference(expected.split(), got.split(), lambda a, b: a == b)


def compare_floats(expected: bytes, got: bytes, tolerance: float = DEFAULT_FLOAT_TOLERANCE) -> str | None:
    def same(a: bytes, b: bytes) -> bool:
        if a == b:
            return True
        try:
            x, y = float(a), float(b)
        except ValueError:
            return False
        return math.isfinite(y) and abs(x - y) <= tolerance * max(1.0, abs(x))

    return _first_difference(expected.split(), got.split(), same)


def compare_exact(expected: bytes, got: bytes) -> str | None:
    def lines(data: bytes) -> list[bytes]:
        out = [line.rstrip() for line in data.split(b"\n")]
        while out and not out[-1]:
            out.pop()
        return out

    e, g = lines(expected), lines(got)
    if e == g:
        return None
    k = next((i for i, (a, b) in enumerate(zip(e, g, strict=False)) if a != b), min(len(e), len(g)))
    if k < len(e) and k < len(g):
        return clip(f"line {k + 1}: expected `{_show([e[k]], 45)}`, got `{_show([g[k]], 45)}`")
    return clip(f"{len(g)} lines of output, expected {len(e)}")


async def run_custom_checker(
    sandbox: Sandbox, checker_source: str, test_input: bytes, expected: bytes, got: bytes
) -> str | None:
    files = {
        "checker.py": checker_source.encode(),
        "input.txt": test_input,
        "output.txt": got,
        "expected.txt": expected,
    }
    run = await sandbox.run(
        files, [PYTHON, "-I", "-S", "checker.py", "input.txt", "output.txt", "expected.txt"], b"", _CUSTOM_LIMITS
    )
    if run.exit_code == 0 and run.ok:
        return None
    if run.exit_code == 1:
        return clip(run.stdout.decode("utf-8", "replace").strip() or "rejected by the checker")
    raise CheckerFailure(f"checker failed: exit {run.exit_code}, signal {run.signal}: {run.stderr[-300:]!r}")
