#include <cstdio>
#include <vector>

int main() {
    int n, m;
    if (std::scanf("%d %d", &n, &m) != 2) return 1;
    std::vector<std::vector<int>> out(n + 1);
    std::vector<int> indegree(n + 1, 0), ready;
    for (int e = 0; e < m; ++e) {
        int u, v;
        std::scanf("%d %d", &u, &v);
        out[u].push_back(v);
        ++indegree[v];
    }
    for (int v = 1; v <= n; ++v) if (indegree[v] == 0) ready.push_back(v);
    for (size_t head = 0; head < ready.size(); ++head)
        for (int v : out[ready[head]]) if (--indegree[v] == 0) ready.push_back(v);
    for (size_t i = 0; i < ready.size(); ++i) std::printf(i ? " %d" : "%d", ready[i]);
    std::printf("\n");
    return 0;
}
