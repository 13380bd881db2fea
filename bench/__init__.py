"""Benchmarks: `make bench` (= `python -m bench`) runs them all, prints tables and writes bench/results/latest.md.

Each benchmark reports p50/p95/p99 where there are several samples, throughput, peak RSS, and a baseline measured in
the same run with the ratio to it. Timing goals are reported here, never asserted in tests (DESIGN.md section 5).
"""
