"""``campaign-api``: the operator core over HTTP, and the executor console."""
