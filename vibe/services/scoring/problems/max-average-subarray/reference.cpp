#include <cstdio>
#include <vector>

int main() {
    int n, k;
    if (std::scanf("%d %d", &n, &k) != 2) return 1;
    std::vector<long long> a(n);
    for (auto& x : a) std::scanf("%lld", &x);
    long long window = 0;
    for (int i = 0; i < k; ++i) window += a[i];
    long long best = window;
    for (int i = k; i < n; ++i) {
        window += a[i] - a[i - k];
        if (window > best) best = window;
    }
    std::printf("%.6f\n", static_cast<double>(best) / k);
    return 0;
}
