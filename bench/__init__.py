"""The benchmark of issues 5 and 11: `python3 bench/run.py` (see bench/README.md).

A package so that its helper programs run as `python -m bench.<name>` from the checkout,
with the same `sys.path` as the uploader they measure.
"""
