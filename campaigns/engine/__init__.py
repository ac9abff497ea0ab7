"""The engine: the per-batch executor and what paces and protects it (rate, breaker, metrics)."""
