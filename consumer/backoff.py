"""The consumer loop's backoff after a failed receive, keyed on the error code that
``QueueUnavailable.code`` carries (AWS's error code, or the botocore exception's name)."""

from __future__ import annotations

CREDENTIAL_ERRORS = frozenset(
    {
        "NoCredentialsError",
        "PartialCredentialsError",
        "CredentialRetrievalError",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "AccessDeniedException",
    }
)
THROTTLING_ERRORS = frozenset(
    {"ThrottlingException", "Throttling", "RequestThrottled", "OverLimit", "KmsThrottled"}
)


def receive_backoff_s(code: str, previous_s: float) -> float:
    """Exponential backoff after a failed receive; credential and throttling errors wait
    longer (a fixed token or a hot account will not heal in a second)."""
    if code in CREDENTIAL_ERRORS:
        base_s, max_s = 10.0, 300.0
    elif code in THROTTLING_ERRORS:
        base_s, max_s = 5.0, 120.0
    else:
        base_s, max_s = 1.0, 60.0
    return min(max_s, max(base_s, previous_s * 2))
