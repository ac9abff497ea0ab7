"""``campaign-producer`` errors: one line, a named exit code, no traceback (in-memory)."""

from __future__ import annotations

import pytest

from tests.unit.producer_support import (
    PROG,
    Cli,
    unknown_campaign_id,
)

# -- errors: one line, a named exit code, no traceback ---------------------------------------


def test_a_json_error_prints_a_failure_object_on_stdout_and_one_line_on_stderr(
    cli: Cli,
) -> None:
    campaign_id = unknown_campaign_id()

    outcome = cli.run("start", campaign_id, "--json")

    assert outcome.code == 65
    assert outcome.data == {"success": False, "error": f"Campaign not found: {campaign_id}"}
    assert outcome.err_lines == [f"{PROG}Campaign not found: {campaign_id}"]


def test_a_json_refused_transition_prints_the_status_in_the_failure_object(cli: Cli) -> None:
    campaign_id = cli.campaign_in("COMPLETED")

    outcome = cli.run("pause", campaign_id, "--json")

    assert outcome.code == 1
    assert outcome.data == {"success": False, "error": "Campaign status is COMPLETED: cannot pause"}
    assert len(outcome.err_lines) == 1


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["launch"], id="unknown-subcommand"),
        pytest.param(["start"], id="missing-campaign-id"),
        pytest.param(["populate", "cmp_x"], id="missing-file"),
        pytest.param([], id="no-subcommand"),
        pytest.param(["list", "--bogus"], id="unknown-option"),
        pytest.param(["dlq", "purge"], id="bad-choice"),
    ],
)
def test_bad_arguments_exit_64_with_one_line(cli: Cli, args: list[str]) -> None:
    cli.refused(*args, code=64)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BATCH_SIZE", "0"),
        ("BATCH_SIZE", "26"),
        ("DAILY_CAP", "abc"),
        ("DAILY_CAP", "-1"),
        ("SEND_RATE_PER_SECOND", "0"),
        ("AWS_ENDPOINT_URL", "localhost:4566"),
    ],
)
def test_a_bad_configuration_value_exits_78_naming_the_variable(
    cli: Cli, variable: str, value: str
) -> None:
    cli.env(**{variable: value})

    line = cli.refused("list", code=78)

    assert line.startswith(f"{PROG}invalid {variable}:")
