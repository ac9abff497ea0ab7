"""The one factory that builds boto3 clients.

Endpoint and region come from settings (the standard ``AWS_ENDPOINT_URL`` included), so moto,
another emulator and AWS differ only by environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from campaigns.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

# botocore's "standard" retry mode: exponential backoff with jitter for throttling and 5xx,
# bounded attempts (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
AWS_MAX_ATTEMPTS = 5
# A long poll waits up to 20 s (SQS's maximum WaitTimeSeconds); the read timeout must exceed it.
AWS_READ_TIMEOUT_S = 30
AWS_CONNECT_TIMEOUT_S = 5


def client_config(max_pool_connections: int = 10, max_attempts: int = AWS_MAX_ATTEMPTS) -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=AWS_CONNECT_TIMEOUT_S,
        read_timeout=AWS_READ_TIMEOUT_S,
        max_pool_connections=max_pool_connections,
        tcp_keepalive=True,
    )


def _client(service: str, settings: Settings, max_pool_connections: int, max_attempts: int) -> Any:
    session = boto3.session.Session()
    return session.client(
        service,  # type: ignore[call-overload]
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=client_config(max_pool_connections, max_attempts),
    )


def dynamodb_client(
    settings: Settings, max_pool_connections: int = 10, max_attempts: int = AWS_MAX_ATTEMPTS
) -> DynamoDBClient:
    """``max_attempts=1`` for writes that must not be repeated blindly (an unconditional
    ``ADD -1`` whose first answer was lost would be applied twice)."""
    client: DynamoDBClient = _client("dynamodb", settings, max_pool_connections, max_attempts)
    return client


def sqs_client(settings: Settings, max_pool_connections: int = 10) -> SQSClient:
    client: SQSClient = _client("sqs", settings, max_pool_connections, AWS_MAX_ATTEMPTS)
    return client
