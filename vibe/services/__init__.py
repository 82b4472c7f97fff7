"""The four services; none imports another (see docs/ARCHITECTURE.md)."""
