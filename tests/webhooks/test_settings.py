"""The receiver's settings (and the opt-out keywords the receipts loop reads): read from their
variables, validated at load, a bad value one line naming it, secrets never printed."""

from __future__ import annotations

from typing import Any

import pytest

from campaigns.domain.errors import ConfigError
from campaigns.settings import Settings, load_settings, require_webhook_secrets

ENV_NAMES = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_the_receiver_defaults_are_the_documented_ones() -> None:
    settings = load_settings()

    assert settings.meta_app_secret.get_secret_value() == ""
    assert settings.meta_webhook_verify_token.get_secret_value() == ""
    assert settings.webhook_port == 8080
    assert settings.webhook_metrics_port == 8001
    assert settings.webhook_max_body_bytes == 1024 * 1024
    assert settings.campaign_receipts_queue_name == "campaign-receipts"
    assert settings.receipts_dlq_name == "campaign-receipts-dlq"
    assert settings.opt_out_keywords == frozenset({"STOP", "UNSUBSCRIBE"})


@pytest.mark.parametrize(
    ("env", "value", "attribute", "expected"),
    [
        ("WEBHOOK_PORT", "9443", "webhook_port", 9443),
        ("WEBHOOK_PORT", "0", "webhook_port", 0),
        ("WEBHOOK_METRICS_PORT", "9102", "webhook_metrics_port", 9102),
        ("WEBHOOK_MAX_BODY_BYTES", "65536", "webhook_max_body_bytes", 65536),
        (
            "CAMPAIGN_RECEIPTS_QUEUE_NAME",
            "prod-receipts",
            "campaign_receipts_queue_name",
            "prod-receipts",
        ),
        ("CAMPAIGN_RECEIPTS_QUEUE_NAME", "prod-receipts", "receipts_dlq_name", "prod-receipts-dlq"),
        ("OPT_OUT_KEYWORDS", "stop, Arrêt ,quit", "opt_out_keywords", {"STOP", "ARRÊT", "QUIT"}),
        ("OPT_OUT_KEYWORDS", "stop all", "opt_out_keywords", {"STOP ALL"}),
        ("OPT_OUT_KEYWORDS", "", "opt_out_keywords", set()),
    ],
)
def test_each_receiver_setting_is_read_from_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, attribute: str, expected: Any
) -> None:
    monkeypatch.setenv(env, value)

    assert getattr(load_settings(), attribute) == expected


def test_the_secrets_are_read_and_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_APP_SECRET", "app-secret-9f2c")
    monkeypatch.setenv("META_WEBHOOK_VERIFY_TOKEN", "verify-token-77ab")

    settings = load_settings()

    assert settings.meta_app_secret.get_secret_value() == "app-secret-9f2c"
    assert settings.meta_webhook_verify_token.get_secret_value() == "verify-token-77ab"
    for shown in (repr(settings), str(settings.model_dump())):
        assert "app-secret-9f2c" not in shown
        assert "verify-token-77ab" not in shown


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("WEBHOOK_PORT", "70000"),
        ("WEBHOOK_PORT", "http"),
        ("WEBHOOK_METRICS_PORT", "-1"),
        ("WEBHOOK_MAX_BODY_BYTES", "100"),  # below 1 KiB: no real payload would fit
        ("WEBHOOK_MAX_BODY_BYTES", str(64 * 1024 * 1024)),
        ("CAMPAIGN_RECEIPTS_QUEUE_NAME", ""),
        ("CAMPAIGN_RECEIPTS_QUEUE_NAME", "receipts queue"),
        ("CAMPAIGN_RECEIPTS_QUEUE_NAME", "r" * 77),  # with "-dlq", over SQS's 80
        ("OPT_OUT_KEYWORDS", "STOP,,UNSUBSCRIBE"),
        ("OPT_OUT_KEYWORDS", "STOP, "),
        ("OPT_OUT_KEYWORDS", "x" * 65),
    ],
)
def test_a_bad_receiver_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)

    with pytest.raises(ConfigError) as raised:
        load_settings()

    text = str(raised.value)
    assert env in text
    assert "\n" not in text
    if len(value) > 3:
        assert value not in text


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        ({}, "META_APP_SECRET"),
        ({"META_APP_SECRET": "s"}, "META_WEBHOOK_VERIFY_TOKEN"),
        ({"META_WEBHOOK_VERIFY_TOKEN": "t"}, "META_APP_SECRET"),
    ],
)
def test_the_receiver_requires_both_secrets_naming_the_one_unset(
    monkeypatch: pytest.MonkeyPatch, present: dict[str, str], missing: str
) -> None:
    for name, value in present.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError, match=missing):
        require_webhook_secrets(load_settings())


def test_with_both_secrets_the_receiver_may_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_APP_SECRET", "s")
    monkeypatch.setenv("META_WEBHOOK_VERIFY_TOKEN", "t")

    require_webhook_secrets(load_settings())


def test_keywords_passed_in_code_are_upper_cased_too() -> None:
    assert load_settings(opt_out_keywords=["stop", "Halt"]).opt_out_keywords == {"STOP", "HALT"}
