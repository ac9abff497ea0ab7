"""The consumer daemon: polls the batch queue and executes each batch behind the guard."""
