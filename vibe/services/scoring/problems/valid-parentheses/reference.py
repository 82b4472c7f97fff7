import sys

PAIRS = {")": "(", "]": "[", "}": "{"}


def is_valid(s):
    stack = []
    push = stack.append
    pop = stack.pop
    for ch in s:
        if ch in "([{":
            push(ch)
        elif not stack or pop() != PAIRS[ch]:
            return False
    return not stack


def main():
    lines = sys.stdin.read().split()
    t = int(lines[0])
    out = ["true" if is_valid(s) else "false" for s in lines[1 : 1 + t]]
    sys.stdout.write("\n".join(out) + "\n")


main()
