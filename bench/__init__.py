"""Benchmarks for the Trakt Watch Dashboard: `python -m bench` (see bench/__main__.py)."""
