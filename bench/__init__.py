"""The benchmark suite (`bench/run_bench.py`) and the single benchmarks
beside it; not shipped, not tests."""
