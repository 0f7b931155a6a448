"""Benchmarks of the app (``bench.py``: speed targets, ``load.py``: many concurrent visitors);
they drive the explorer core and the app through public functions and the API only."""
