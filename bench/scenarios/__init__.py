"""One module per scenario of docs/benchmarks.md; each returns plain data for the report."""
