"""Benchmarks that print figures: scripts, a package only so that one can use another's
building blocks (bench/memory.py uses bench/api.py's)."""
