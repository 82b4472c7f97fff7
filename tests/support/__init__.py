"""Helpers the test files import (fixtures stay in tests/conftest.py)."""
