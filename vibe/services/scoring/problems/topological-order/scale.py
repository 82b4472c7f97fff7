"""``python scale.py N``: a DAG on N vertices with 2N edges along a hidden random order."""

import random
import sys


def generate(n: int) -> str:
    rng = random.Random(n)
    order = list(range(1, n + 1))
    rng.shuffle(order)
    edges = []
    for _ in range(2 * n if n > 1 else 0):
        i, j = sorted(rng.sample(range(n), 2))
        edges.append(f"{order[i]} {order[j]}")
    return f"{n} {len(edges)}\n" + "".join(e + "\n" for e in edges)


if __name__ == "__main__":
    sys.stdout.write(generate(int(sys.argv[1])))
