"""Settings: one frozen object from the environment; a bad value is one line naming it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from campaigns.domain.errors import ConfigError
from campaigns.settings import Settings, load_settings
from consumer.receipts import RECEIPTS_POLL_WAIT_S

ENV_NAMES = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_the_defaults_are_the_documented_ones() -> None:
    settings = load_settings()

    assert settings.meta_api_base_url == "https://graph.facebook.com"
    assert settings.meta_api_version == "v25.0"
    assert settings.meta_connect_timeout_s == 5
    assert settings.meta_read_timeout_s == 30
    assert settings.aws_endpoint_url is None
    assert settings.campaigns_table == "campaigns"
    assert settings.recipients_table == "campaign-recipients"
    assert settings.campaign_queue_name == "campaign-batches"
    assert settings.dlq_name == "campaign-batches-dlq"
    assert settings.campaign_queue_url is None
    assert settings.daily_cap == 200
    assert settings.business_portfolio_id == "default"
    assert settings.send_rate_per_second == 20
    assert settings.max_send_attempts == 3
    assert settings.batch_size == 25
    assert settings.visibility_timeout_s == 60
    assert settings.lease_s == 60
    assert settings.receipts_poll_wait_s == RECEIPTS_POLL_WAIT_S == 10
    assert settings.metrics_port == 8000
    assert settings.receipts_concurrency == 10
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("env", "value", "attribute", "expected"),
    [
        ("META_ACCESS_TOKEN", "EAAG-secret", "meta_access_token", "EAAG-secret"),
        ("META_PHONE_NUMBER_ID", "106540352242922", "meta_phone_number_id", "106540352242922"),
        (
            "META_API_BASE_URL",
            "http://127.0.0.1:9000/",
            "meta_api_base_url",
            "http://127.0.0.1:9000",
        ),
        ("META_API_VERSION", "v23.0", "meta_api_version", "v23.0"),
        ("META_CONNECT_TIMEOUT_S", "2.5", "meta_connect_timeout_s", 2.5),
        ("META_READ_TIMEOUT_S", "10", "meta_read_timeout_s", 10.0),
        ("AWS_REGION", "ap-south-1", "aws_region", "ap-south-1"),
        ("AWS_ENDPOINT_URL", "http://localhost:4566", "aws_endpoint_url", "http://localhost:4566"),
        ("AWS_ENDPOINT_URL", "", "aws_endpoint_url", None),
        ("CAMPAIGNS_TABLE", "prod-campaigns", "campaigns_table", "prod-campaigns"),
        ("RECIPIENTS_TABLE", "prod-recipients", "recipients_table", "prod-recipients"),
        ("CAMPAIGN_QUEUE_NAME", "prod-batches", "campaign_queue_name", "prod-batches"),
        (
            "CAMPAIGN_QUEUE_URL",
            "https://sqs.ap-south-1.amazonaws.com/1/prod-batches",
            "campaign_queue_url",
            "https://sqs.ap-south-1.amazonaws.com/1/prod-batches",
        ),
        ("DAILY_CAP", "1600", "daily_cap", 1600),
        ("DAILY_CAP", "0", "daily_cap", 0),
        ("BUSINESS_PORTFOLIO_ID", "acme-retail", "business_portfolio_id", "acme-retail"),
        ("SEND_RATE_PER_SECOND", "64", "send_rate_per_second", 64.0),
        ("MAX_SEND_ATTEMPTS", "5", "max_send_attempts", 5),
        ("BATCH_SIZE", "10", "batch_size", 10),
        ("VISIBILITY_TIMEOUT_S", "120", "visibility_timeout_s", 120),
        ("LEASE_S", "90", "lease_s", 90),
        ("RECEIPTS_POLL_WAIT_S", "1", "receipts_poll_wait_s", 1),
        ("METRICS_PORT", "9100", "metrics_port", 9100),
        ("RECEIPTS_CONCURRENCY", "1", "receipts_concurrency", 1),
        ("RECEIPTS_CONCURRENCY", "64", "receipts_concurrency", 64),
        ("LOG_FORMAT", "console", "log_format", "console"),
        ("LOG_FORMAT", "CONSOLE", "log_format", "console"),
    ],
)
def test_each_setting_is_read_from_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, attribute: str, expected: Any
) -> None:
    monkeypatch.setenv(env, value)

    settings = load_settings()

    actual = getattr(settings, attribute)
    if attribute == "meta_access_token":
        actual = actual.get_secret_value()
    assert actual == expected


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("DAILY_CAP", "-1"),
        ("DAILY_CAP", "lots"),
        ("MAX_SEND_ATTEMPTS", "0"),
        ("SEND_RATE_PER_SECOND", "0"),
        ("SEND_RATE_PER_SECOND", "5000"),
        ("BATCH_SIZE", "26"),
        ("VISIBILITY_TIMEOUT_S", "abc"),
        ("METRICS_PORT", "70000"),
        ("RECEIPTS_CONCURRENCY", "0"),
        ("RECEIPTS_CONCURRENCY", "65"),
        ("META_API_VERSION", "25.0"),
        ("META_API_BASE_URL", "graph.facebook.com"),
        ("META_READ_TIMEOUT_S", "0"),
        ("AWS_ENDPOINT_URL", "localhost:4566"),
        ("BUSINESS_PORTFOLIO_ID", "acme retail"),
        ("LOG_FORMAT", "xml"),
        ("RECEIPTS_POLL_WAIT_S", "21"),  # past SQS's 20 s long-poll ceiling
        ("LEASE_S", "10"),  # shorter than one send (connect + read timeouts)
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)

    with pytest.raises(ConfigError) as raised:
        load_settings()

    text = str(raised.value)
    assert env in text
    assert "\n" not in text


def test_the_access_token_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_ACCESS_TOKEN", "EAAG-very-secret")

    settings = load_settings()

    assert "EAAG-very-secret" not in repr(settings)
    assert "EAAG-very-secret" not in str(settings.model_dump())


def test_settings_are_frozen() -> None:
    settings = load_settings()

    with pytest.raises(ValidationError):
        settings.daily_cap = 1000  # type: ignore[misc]


def test_the_messages_url_is_built_from_base_version_and_number() -> None:
    settings = load_settings(
        meta_api_base_url="http://127.0.0.1:9000/", meta_phone_number_id="106540352242922"
    )

    assert settings.messages_url == "http://127.0.0.1:9000/v25.0/106540352242922/messages"
