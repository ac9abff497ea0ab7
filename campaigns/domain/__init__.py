"""The domain: records and state machines, the batch message codec, errors, phone numbers."""
