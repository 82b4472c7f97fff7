"""``python scale.py N``: one valid, deeply nested string of N brackets and its broken twin."""

import random
import sys


def generate(n: int) -> str:
    rng = random.Random(n)
    opens = [rng.choice("([{") for _ in range(n // 2)]
    closer = {"(": ")", "[": "]", "{": "}"}
    valid = "".join(opens) + "".join(closer[c] for c in reversed(opens))
    broken = valid[:-1] + ("]" if valid[-1] != "]" else ")")
    return f"2\n{valid}\n{broken}\n"


if __name__ == "__main__":
    sys.stdout.write(generate(int(sys.argv[1])))
