"""The benchmark rows of tools/benchmark.py (docs/benchmarks.md): each times one of our
models, loaders or evaluations against a peer in the same process.

- harness.py: options, the interleaved timing on two clocks, the table, the classifier rows;
- detection.py, data.py, coco.py, gpu.py: the detector, loader, COCO evaluation and GPU rows;
- rows.py: the rows by name (``ROWS``, ``run_rows``).

An application of resnet_det, not part of the installed package: tools/benchmark.py imports
it by name (Python puts the script's folder first on sys.path), the tests through pytest's
``pythonpath`` (pyproject.toml).
"""
