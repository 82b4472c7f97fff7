"""Custom checker: ``checker.py input output expected``; any topological order is accepted.
Exit 0 = accepted, 1 = wrong answer (reason on stdout)."""

import sys


def main() -> int:
    with open(sys.argv[1], "rb") as f:
        data = f.read().split()
    n, m = int(data[0]), int(data[1])
    with open(sys.argv[2], "rb") as f:
        got = f.read().split()
    if len(got) != n:
        print(f"expected {n} vertices, got {len(got)}")
        return 1
    position = {}
    for i, token in enumerate(got):
        try:
            v = int(token)
        except ValueError:
            print(f"token {i + 1} is not a vertex number")
            return 1
        if not 1 <= v <= n or v in position:
            print(f"token {i + 1}: vertex {v} is out of range or repeated")
            return 1
        position[v] = i
    for e in range(m):
        u, v = int(data[2 + 2 * e]), int(data[3 + 2 * e])
        if position[u] > position[v]:
            print(f"edge {e + 1} ({u} -> {v}) goes backwards")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
