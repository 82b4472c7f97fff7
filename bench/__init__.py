"""Benchmarks: `python -m bench.<name>`; each prints medians and ratios measured in the same run."""
