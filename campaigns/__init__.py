"""The campaign domain shared by the producer CLI and the consumer daemon."""
