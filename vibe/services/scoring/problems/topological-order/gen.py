"""Regenerate the tests of topological-order (deterministic): ``python gen.py``.
Expected outputs are the reference's order; the custom checker accepts any valid order."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from _genlib import Test, build
from scale import generate

LARGE_N = 70_000


def check(data: str) -> str:
    """Not a brute force (the answer is not unique): the reference's order, verified by the checker."""
    out = subprocess.run(
        [sys.executable, str(HERE / "reference.py")], input=data.encode(), capture_output=True, check=True
    ).stdout
    Path("/tmp/_topo.in").write_text(data)
    Path("/tmp/_topo.out").write_bytes(out)
    subprocess.run(
        [sys.executable, str(HERE / "checker.py"), "/tmp/_topo.in", "/tmp/_topo.out", "/dev/null"], check=True
    )
    return out.decode()


def main():
    tests = [
        Test("4 3\n1 2\n1 3\n3 4\n", hidden=False),
        Test("5 4\n5 4\n4 3\n3 2\n2 1\n", hidden=False),
        Test("1 0\n", hidden=True),
        Test("6 0\n", hidden=True),
        Test(generate(40), hidden=True),
        Test(generate(2000), hidden=True),
        Test(generate(LARGE_N), hidden=True, large=True),
        Test(
            f"{LARGE_N} {LARGE_N - 1}\n" + "".join(f"{v + 1} {v}\n" for v in range(LARGE_N - 1, 0, -1)),
            hidden=True,
            large=True,
        ),
    ]
    build(HERE, tests, check, brute_max_bytes=200_000)


if __name__ == "__main__":
    main()
