"""One frozen settings object, built once at start-up from the environment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from campaigns.domain.errors import ConfigError
from campaigns.domain.message import MAX_BATCH_SIZE

# Meta's Cloud API: 80 msg/s per phone number by default, 1,000 after the automatic upgrade.
META_MAX_RATE_PER_S = 1000.0
# SQS: a message's visibility timeout may not exceed 12 hours.
MAX_VISIBILITY_TIMEOUT_S = 12 * 60 * 60
# SQS: one SendMessageBatch / DeleteMessageBatch / ReceiveMessage handles at most 10 messages.
MAX_SQS_BATCH = 10
# The operator API: an uploaded CSV may be this large (a 100,000-row file is ~1.5 MB) ...
DEFAULT_API_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# ... and a console session lasts a working day.
DEFAULT_API_SESSION_TTL_S = 8 * 60 * 60
# The webhook receiver (campaign-webhooks): Meta's payloads are a few KiB; 1 MiB is generous,
# and a body is held in memory whole while its signature is checked.
DEFAULT_WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
MAX_WEBHOOK_BODY_BYTES = 16 * 1024 * 1024
# The receipts loop: messages of one receive applied at once (each a few DynamoDB round trips).
# One receive holds at most MAX_SQS_BATCH messages, so more than that adds nothing.
DEFAULT_RECEIPTS_CONCURRENCY = 10  # one whole receive at once
# SQS: a queue's name is at most 80 characters; the dead-letter queue's adds "-dlq".
MAX_QUEUE_NAME_LENGTH = 80 - len("-dlq")
QUEUE_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
# An inbound opt-out keyword: one word or phrase, compared whole and case-insensitively.
OPT_OUT_KEYWORD_RE = re.compile(r"^\S(?:.{0,62}\S)?$")
# An operator's name in OPERATOR_API_KEYS: it lands in audit lines and in the session cookie.
OPERATOR_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def parse_operator_keys(text: str) -> dict[str, str]:
    """``name:key,name2:key2`` → ``{name: key}``. A malformed entry is named by its position,
    never by its text (it holds a key)."""
    keys: dict[str, str] = {}
    entries = [entry.strip() for entry in text.split(",")] if text.strip() else []
    for position, entry in enumerate(entries, start=1):
        name, colon, key = entry.partition(":")
        name, key = name.strip(), key.strip()
        if not colon or not key:
            raise ValueError(f"entry {position} is not name:key")
        if not OPERATOR_NAME_RE.match(name):
            raise ValueError(f"entry {position}: the name must be 1-64 of A-Z a-z 0-9 _ -")
        if name in keys:
            raise ValueError(f"entry {position}: the name {name!r} appears twice")
        if key in keys.values():
            raise ValueError(f"entry {position}: two operators share one key")
        keys[name] = key
    return keys


def parse_opt_out_keywords(text: str) -> frozenset[str]:
    """``STOP,UNSUBSCRIBE`` → ``{"STOP", "UNSUBSCRIBE"}``: comma-separated, trimmed,
    upper-cased (inbound text is compared whole, case-insensitively). An empty list is
    allowed: it turns keyword opt-outs off."""
    keywords: set[str] = set()
    entries = [entry.strip() for entry in text.split(",")] if text.strip() else []
    for position, entry in enumerate(entries, start=1):
        if not OPT_OUT_KEYWORD_RE.match(entry):
            raise ValueError(f"entry {position} must be 1-64 characters, not blank")
        keywords.add(entry.upper())
    return frozenset(keywords)


class Settings(BaseSettings):
    """Every knob of both processes. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    meta_access_token: SecretStr = SecretStr("")
    meta_phone_number_id: str = ""
    meta_api_base_url: str = "https://graph.facebook.com"
    meta_api_version: str = Field(default="v25.0", pattern=r"^v\d+\.\d+$")
    meta_connect_timeout_s: float = Field(default=5.0, gt=0, le=60)
    meta_read_timeout_s: float = Field(default=30.0, gt=0, le=300)

    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None

    campaigns_table: str = Field(default="campaigns", min_length=3, max_length=255)
    recipients_table: str = Field(default="campaign-recipients", min_length=3, max_length=255)
    campaign_queue_name: str = Field(default="campaign-batches", min_length=1, max_length=76)
    campaign_queue_url: str | None = None

    daily_cap: int = Field(default=200, ge=0)
    business_portfolio_id: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    send_rate_per_second: float = Field(default=20.0, gt=0, le=META_MAX_RATE_PER_S)
    max_send_attempts: int = Field(default=3, ge=1, le=10)
    batch_size: int = Field(default=25, ge=1, le=MAX_BATCH_SIZE)
    visibility_timeout_s: int = Field(default=60, ge=5, le=MAX_VISIBILITY_TIMEOUT_S)
    lease_s: int = Field(default=60, ge=5, le=3600)
    poll_wait_s: int = Field(default=20, ge=0, le=20)
    # The receipts loop's long poll (consumer/receipts.py RECEIPTS_POLL_WAIT_S); a stop waits
    # out the poll in progress, so tests and the sandbox set it shorter.
    receipts_poll_wait_s: int = Field(default=10, ge=0, le=20)
    shutdown_timeout_s: float = Field(default=25.0, gt=0, le=3600)
    consumer_concurrency: int = Field(default=1, ge=1, le=64)
    receipts_concurrency: int = Field(default=DEFAULT_RECEIPTS_CONCURRENCY, ge=1, le=64)
    # Hot items: spread the campaign counters and the cap buckets over this many items once
    # the total send rate nears DynamoDB's per-item write ceiling (docs/performance.md).
    counter_shards: int = Field(default=1, ge=1, le=64)
    metrics_port: int = Field(default=8000, ge=0, le=65535)
    # The operator API (campaign-api): who may use it, how much it accepts, how long a console
    # session lasts. Empty keys are valid here (the producer and consumer need none); the API
    # refuses to start without one.
    operator_api_keys: SecretStr = SecretStr("")
    api_max_upload_bytes: int = Field(default=DEFAULT_API_MAX_UPLOAD_BYTES, ge=1024)
    api_session_ttl_s: int = Field(default=DEFAULT_API_SESSION_TTL_S, ge=60, le=7 * 24 * 3600)
    # The webhook receiver (campaign-webhooks): Meta's app secret signs every POST, the verify
    # token answers the subscription handshake. Empty is valid here (the other processes need
    # neither); the receiver refuses to start without both.
    meta_app_secret: SecretStr = SecretStr("")
    meta_webhook_verify_token: SecretStr = SecretStr("")
    webhook_port: int = Field(default=8080, ge=0, le=65535)
    # /metrics of the receiver, on a port of its own: never the public webhook port.
    webhook_metrics_port: int = Field(default=8001, ge=0, le=65535)
    webhook_max_body_bytes: int = Field(
        default=DEFAULT_WEBHOOK_MAX_BODY_BYTES, ge=1024, le=MAX_WEBHOOK_BODY_BYTES
    )
    campaign_receipts_queue_name: str = Field(
        default="campaign-receipts",
        min_length=1,
        max_length=MAX_QUEUE_NAME_LENGTH,
        pattern=QUEUE_NAME_PATTERN,
    )
    # Comma-separated in the environment (STOP,UNSUBSCRIBE); upper-cased here.
    opt_out_keywords: Annotated[frozenset[str], NoDecode] = frozenset({"STOP", "UNSUBSCRIBE"})
    # The operator's price table (calling_code,category,price[,currency]) for the estimated
    # cost in ``status``; without one, status shows the billable counts only.
    prices_file: Path | None = None
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("aws_endpoint_url", "campaign_queue_url", "prices_file", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("meta_api_base_url", "aws_endpoint_url", "campaign_queue_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/") if value else value

    @field_validator("operator_api_keys")
    @classmethod
    def _name_key_pairs(cls, value: SecretStr) -> SecretStr:
        parse_operator_keys(value.get_secret_value())
        return value

    @field_validator("opt_out_keywords", mode="before")
    @classmethod
    def _keyword_list(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_opt_out_keywords(value)
        if isinstance(value, list | tuple | set | frozenset):
            return parse_opt_out_keywords(",".join(str(v) for v in value))
        return value

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _lease_covers_a_send(self) -> Settings:
        if self.lease_s < self.meta_connect_timeout_s + self.meta_read_timeout_s:
            raise ValueError(
                "LEASE_S must cover one send (META_CONNECT_TIMEOUT_S + META_READ_TIMEOUT_S)"
            )
        return self

    @property
    def operator_keys(self) -> dict[str, str]:
        """``OPERATOR_API_KEYS`` as ``{name: key}`` (validated at load)."""
        return parse_operator_keys(self.operator_api_keys.get_secret_value())

    @property
    def dlq_name(self) -> str:
        return f"{self.campaign_queue_name}-dlq"

    @property
    def receipts_dlq_name(self) -> str:
        return f"{self.campaign_receipts_queue_name}-dlq"

    @property
    def messages_url(self) -> str:
        return (
            f"{self.meta_api_base_url}/{self.meta_api_version}/{self.meta_phone_number_id}/messages"
        )


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning a validation failure into one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc") or ()
        name = str(loc[0]).upper() if loc else "configuration"
        raise ConfigError(f"invalid {name}: {first.get('msg', 'invalid value')}") from None


def require_operator_keys(settings: Settings) -> dict[str, str]:
    """The API serves nobody without a key: one line naming the variable."""
    keys = settings.operator_keys
    if not keys:
        raise ConfigError("invalid OPERATOR_API_KEYS: must be set (name:key,name2:key2)")
    return keys


def require_webhook_secrets(settings: Settings) -> None:
    """The receiver verifies every POST and answers the handshake: without the app secret or
    the verify token it would accept anyone's payloads or no subscription. One line naming the
    variable, never its value."""
    if not settings.meta_app_secret.get_secret_value():
        raise ConfigError("invalid META_APP_SECRET: must be set")
    if not settings.meta_webhook_verify_token.get_secret_value():
        raise ConfigError("invalid META_WEBHOOK_VERIFY_TOKEN: must be set")


def require_meta_credentials(settings: Settings) -> None:
    """Sending needs the Cloud API token and phone number id: one line naming what is unset."""
    if not settings.meta_access_token.get_secret_value():
        raise ConfigError("invalid META_ACCESS_TOKEN: must be set")
    if not settings.meta_phone_number_id:
        raise ConfigError("invalid META_PHONE_NUMBER_ID: must be set")
