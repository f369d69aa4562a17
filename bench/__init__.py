"""meshmart's benchmark harness (`make bench`, `python -m bench`): fortio load, psutil samples.

Modelled on Istio's own perf harness (tools/perf/benchmark): fortio fixed-rate and max-rate
runs, every process's CPU and memory sampled during each run, results as JSON per run and a
Markdown report. Benchmarks measure; they never fail on a number.
"""
