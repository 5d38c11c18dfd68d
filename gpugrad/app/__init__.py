"""The application above the library: the ``gpugrad`` command (``cli``), training runs (``train``, ``runs``),
benchmarks (``benchmark``, ``bench_report``, ``bench_dist``) and the lecture's worked examples (``lecture``).
Nothing in the library imports this package."""
