import sys
from collections import deque


def main():
    data = sys.stdin.buffer.read().split()
    n, m = int(data[0]), int(data[1])
    out_edges = [[] for _ in range(n + 1)]
    indegree = [0] * (n + 1)
    for e in range(m):
        u, v = int(data[2 + 2 * e]), int(data[3 + 2 * e])
        out_edges[u].append(v)
        indegree[v] += 1
    ready = deque(v for v in range(1, n + 1) if indegree[v] == 0)
    order = []
    while ready:
        u = ready.popleft()
        order.append(u)
        for v in out_edges[u]:
            indegree[v] -= 1
            if indegree[v] == 0:
                ready.append(v)
    sys.stdout.write(" ".join(map(str, order)) + "\n")


main()
