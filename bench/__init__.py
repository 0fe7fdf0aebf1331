"""Benchmarks (`make bench`). Each module runs on its own: `.venv/bin/python -m bench.<name>`."""
