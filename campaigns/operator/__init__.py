"""The operator core: what each operator command does, shared by the CLI (and the HTTP API)."""
