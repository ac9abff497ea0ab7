"""`make bench`: the figures behind docs/performance.md (a benchmark, not a test)."""
