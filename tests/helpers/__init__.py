"""Test-only helpers (reference implementations); importable as ``helpers`` from tests/ and benchmarks/."""
