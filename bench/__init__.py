"""Benchmarks: each runs as ``python -m bench.<name> [--quick]`` and ends with one JSON line of results."""
