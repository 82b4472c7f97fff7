"""Regenerate the tests of valid-parentheses (deterministic): ``python gen.py``."""

import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _genlib import Test, build

LARGE_N = 200_000
OPEN, CLOSE = "([{", ")]}"


def brute(data: str) -> str:
    tok = data.split()
    res = []
    for s in tok[1 : 1 + int(tok[0])]:
        prev = None
        while prev != s:  # repeatedly delete adjacent matching pairs
            prev = s
            s = s.replace("()", "").replace("[]", "").replace("{}", "")
        res.append("true" if s == "" else "false")
    return "\n".join(res)


def balanced(rng, n_pairs, depth_bias=0.5):
    """A random balanced string with n_pairs pairs (iterative)."""
    out, stack, left = [], [], n_pairs
    while left or stack:
        if left and (not stack or rng.random() < depth_bias):
            k = rng.randrange(3)
            out.append(OPEN[k])
            stack.append(k)
            left -= 1
        else:
            out.append(CLOSE[stack.pop()])
    return "".join(out)


def corrupt(rng, s):
    i = rng.randrange(len(s))
    chars = list(s)
    choices = [c for c in "()[]{}" if c != chars[i]]
    chars[i] = rng.choice(choices)
    return "".join(chars)


def nested(rng, n_pairs):
    ks = [rng.randrange(3) for _ in range(n_pairs)]
    return "".join(OPEN[k] for k in ks) + "".join(CLOSE[k] for k in reversed(ks))


def fmt(strings):
    return f"{len(strings)}\n" + "\n".join(strings) + "\n"


def main():
    rng = random.Random(424242)
    small = []
    for _ in range(60):
        s = balanced(rng, rng.randint(1, 8))
        small.append(s if rng.random() < 0.5 else corrupt(rng, s))
    medium = []
    for _ in range(40):
        s = balanced(rng, rng.randint(20, 60), depth_bias=0.6)
        medium.append(s if rng.random() < 0.5 else corrupt(rng, s))
    deep = nested(rng, LARGE_N // 2)
    deep_bad = list(nested(rng, LARGE_N // 2))
    deep_bad[LARGE_N // 2] = {")": "]", "]": "}", "}": ")"}[deep_bad[LARGE_N // 2]]  # first closer wrong
    many = [balanced(rng, 50, 0.7) for _ in range(900)] + [nested(rng, 50_000)]
    many = [s if rng.random() < 0.5 else corrupt(rng, s) for s in many]
    tests = [
        Test(fmt(["()", "()[]{}", "(]", "([)]", "{[]}"]), hidden=False),
        Test(fmt(["((", "))", "{[()()]}", "[", "]()["]), hidden=False),
        Test(fmt(["(", ")", "{}", "}{", "((()))", "(((((((((())))))))))("]), hidden=True),  # edge cases
        Test(fmt(small), hidden=True),
        Test(fmt(medium), hidden=True),
        Test(fmt([nested(rng, 1500), corrupt(rng, nested(rng, 1500))]), hidden=True),  # medium, deep
        Test(fmt([deep, "".join(deep_bad)]), hidden=True, large=True),
        Test(fmt(many), hidden=True, large=True),
    ]
    build(HERE, tests, brute, brute_max_bytes=10_000)


if __name__ == "__main__":
    main()
