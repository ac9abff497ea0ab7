"""The CLI's human views, on the in-memory adapters: ``list`` and ``recipients`` tables and
pages, the CSV export, ``dlq`` in words, ``cancel``'s confirmation, ``reconcile`` in words, and
``status --watch`` as a live view on a (fake) terminal that never runs past its width."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from campaigns.domain.clock import iso_utc
from campaigns.domain.exitcodes import EXIT_CONFIG
from campaigns.domain.message import encode, new_batch
from campaigns.domain.models import Campaign, CampaignStatus, new_campaign_id
from producer import views
from tests.unit.producer_support import PROG, Cli, e164, national, unknown_campaign_id

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _screen_lines(text: str) -> list[str]:
    """What a terminal would draw, line by line, with the control sequences removed."""
    return [piece for line in ANSI.sub("", text).split("\n") for piece in line.split("\r")]


def _assert_fits(lines: list[str], width: int) -> None:
    too_wide = [line for line in lines if cell_len(line) > width]
    assert too_wide == []


def _as_terminal(monkeypatch: pytest.MonkeyPatch, columns: int = 80) -> FakeTty:
    """stdout as a terminal of ``columns`` (set in the test itself: capsys swaps stdout back
    when the test starts)."""
    screen = FakeTty()
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys, "stdout", screen)
    return screen


def _campaigns(cli: Cli, statuses: list[CampaignStatus]) -> list[str]:
    ids = []
    for n, status in enumerate(statuses):
        campaign_id = new_campaign_id()
        cli.store.add_campaign(
            Campaign(
                campaign_id,
                f"campaign number {n}",
                "tmpl",
                "en_US",
                status,
                created_at=iso_utc(1_700_000_000 + n),
            )
        )
        ids.append(campaign_id)
    return ids


# -- list ------------------------------------------------------------------------------------


def test_list_prints_a_table_newest_first_and_the_next_cursor(cli: Cli) -> None:
    cli.env(COLUMNS="80")
    ids = _campaigns(cli, [CampaignStatus.DRAFT] * 3)

    outcome = cli.run("list", "--limit", "2")

    assert outcome.code == 0
    lines = outcome.out.splitlines()
    _assert_fits([line for line in lines if not line.startswith("next page: ")], 80)
    assert lines[0].split() == ["campaign", "status", "progress", "outcome"]
    text = " ".join(outcome.out.split())
    assert text.index(ids[2]) < text.index("campaign number 2") < text.index(ids[1])
    assert ids[0] not in text
    cursor = cli.ok("list", "--limit", "2")["nextCursor"]
    assert lines[-1] == f"next page: {PROG.rstrip(': ')} list --cursor {cursor}"
    rest = cli.ok("list", "--limit", "2", "--cursor", cursor)
    assert [c["campaignId"] for c in rest["campaigns"]] == [ids[0]]
    assert rest["nextCursor"] is None


def test_list_json_keeps_the_old_keys_and_adds_the_cursor(cli: Cli) -> None:
    _campaigns(cli, [CampaignStatus.DRAFT])

    listed = cli.ok("list")

    entry = listed["campaigns"][0]
    assert {"campaignId", "name", "status", "totalRecipients", "progress", "createdAt"} <= set(
        entry
    )
    assert entry["progressPercent"] == entry["progress"]
    assert listed["nextCursor"] is None


def test_list_filters_by_status(cli: Cli) -> None:
    ids = _campaigns(cli, [CampaignStatus.DRAFT, CampaignStatus.PAUSED, CampaignStatus.PAUSED])

    listed = cli.ok("list", "--status", "PAUSED")["campaigns"]

    assert [c["campaignId"] for c in listed] == [ids[2], ids[1]]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--limit", "0"], 65, "limit must be between 1 and 200"),
        (["--limit", "201"], 65, "limit must be between 1 and 200"),
        (["--cursor", "nope"], 65, "invalid cursor"),
        (["--status", "SENT"], 64, "invalid choice"),
    ],
)
def test_list_refuses_bad_paging_with_one_line(
    cli: Cli, args: list[str], code: int, message: str
) -> None:
    assert message in cli.refused("list", *args, code=code)


def test_list_with_no_campaigns_says_so(cli: Cli) -> None:
    assert cli.run("list").out == "no campaigns\n"


# -- recipients ------------------------------------------------------------------------------


def _with_failures(cli: Cli, count: int = 5) -> tuple[str, list[str]]:
    campaign_id = cli.populated(national(count))
    phones = [e164(p) for p in national(count)]
    for phone in phones[::2]:
        cli.set_recipient(campaign_id, phone, status="FAILED", errorCode="META_131026", attempts=1)
    return campaign_id, phones


def test_recipients_prints_a_table_with_the_error_meaning(cli: Cli) -> None:
    cli.env(COLUMNS="80")
    campaign_id, phones = _with_failures(cli)

    outcome = cli.run("recipients", campaign_id, "--status", "FAILED")

    assert outcome.code == 0
    _assert_fits(outcome.out.splitlines(), 80)
    text = " ".join(outcome.out.split())
    for phone in phones[::2]:
        assert phone in text
    assert phones[1] not in text
    assert "Undeliverable: the number is not on WhatsApp" in text
    assert "next page" not in text


def test_recipients_pages_through_the_cli_with_the_printed_cursor(cli: Cli) -> None:
    campaign_id, phones = _with_failures(cli, 7)
    seen: list[str] = []
    args = ["recipients", campaign_id, "--limit", "3"]

    page = cli.ok(*args)
    while True:
        seen.extend(r["phone"] for r in page["recipients"])
        if page["nextCursor"] is None:
            break
        page = cli.ok(*args, "--cursor", page["nextCursor"])

    assert seen == phones


def test_recipients_csv_writes_every_matching_recipient_to_the_file(
    cli: Cli, tmp_path: Path
) -> None:
    campaign_id, phones = _with_failures(cli)
    target = tmp_path / "failed.csv"

    result = cli.ok("recipients", campaign_id, "--status", "FAILED", "--csv", str(target))

    assert (result["rows"], result["file"]) == (3, str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [r["phone"] for r in rows] == phones[::2]
    assert {r["errorCode"] for r in rows} == {"META_131026"}
    assert [p for p in tmp_path.iterdir() if "failed" in p.name] == [target]  # no partial file
    assert cli.run("recipients", campaign_id, "--csv", str(target)).out == (
        f"wrote 5 recipient(s) to {target}\n"
    )


def test_recipients_csv_dash_writes_the_export_to_stdout(cli: Cli) -> None:
    campaign_id, phones = _with_failures(cli, 2)

    outcome = cli.run("recipients", campaign_id, "--csv", "-")

    assert outcome.code == 0
    lines = outcome.out.splitlines()
    assert lines[0] == (
        "phone,status,attempts,errorCode,errorMeaning,messageId,unknownReason,finishedAt"
    )
    assert [line.split(",")[0] for line in lines[1:]] == phones


def test_recipients_csv_of_an_unknown_campaign_writes_no_file(cli: Cli, tmp_path: Path) -> None:
    campaign_id = unknown_campaign_id()
    target = tmp_path / "out.csv"

    line = cli.refused("recipients", campaign_id, "--csv", str(target), code=65)

    assert line == f"{PROG}Campaign not found: {campaign_id}"
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if "out.csv" in p.name] == []


def test_recipients_refuses_a_limit_over_500(cli: Cli) -> None:
    campaign_id = cli.populated(national(1))

    line = cli.refused("recipients", campaign_id, "--limit", "501", code=65)

    assert line == f"{PROG}limit must be between 1 and 500"


# -- dlq -------------------------------------------------------------------------------------


def test_dlq_list_shows_masked_entries_and_which_are_poison(cli: Cli) -> None:
    cli.env(COLUMNS="120")
    good = encode(new_batch(cli.create(), ["919876500001"]))
    orphan_id = unknown_campaign_id()
    cli.dlq.send([good, encode(new_batch(orphan_id, ["919876500002"])), "to 919876543210"])

    outcome = cli.run("dlq", "list")

    assert outcome.code == 0
    text = " ".join(outcome.out.split())
    assert "919876543210" not in text
    assert "to 9198******10" in text
    assert f"yes: campaign {orphan_id} does not exist" in text
    assert text.count("yes:") == 2
    assert " no" in text


def test_dlq_redrive_says_what_it_skipped(cli: Cli) -> None:
    cli.dlq.send([encode(new_batch(cli.create(), ["919876500001"])), "garbage"])

    outcome = cli.run("dlq", "redrive")

    assert outcome.out == (
        "redriven 1 message(s); skipped 1 poison message(s), left in the DLQ "
        "(see `dlq list`; --include-poison redrives them)\n"
    )


# -- cancel ----------------------------------------------------------------------------------


def test_cancel_without_yes_and_no_terminal_is_refused_and_changes_nothing(cli: Cli) -> None:
    campaign_id = cli.campaign_in("RUNNING")
    before = cli.campaign(campaign_id)

    line = cli.refused("cancel", campaign_id, code=64)

    assert line == f"{PROG}cancel is final: pass --yes to confirm (nothing was changed)"
    assert cli.campaign(campaign_id) == before


@pytest.mark.parametrize(("answer", "status"), [("y\n", "CANCELLED"), ("\n", "RUNNING")])
def test_cancel_on_a_terminal_asks_and_does_what_the_answer_says(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, answer: str, status: str
) -> None:
    campaign_id = cli.campaign_in("RUNNING")
    monkeypatch.setattr(sys, "stdin", FakeTty(answer))

    outcome = cli.run("cancel", campaign_id, "--json")

    assert outcome.code == (0 if status == "CANCELLED" else 64)
    assert f"Cancel campaign {campaign_id} (Diwali offer)? It is final. [y/N]" in outcome.err
    assert cli.campaign(campaign_id)["status"] == status


# -- reconcile -------------------------------------------------------------------------------


def test_reconcile_says_what_it_repaired_in_words(cli: Cli) -> None:
    campaign_id = cli.campaign_in("RUNNING")
    for phone in national(2):
        cli.set_recipient(campaign_id, e164(phone), status="SENT", messageId="wamid.X")
    cli.set_campaign(campaign_id, sentCount=1)

    outcome = cli.run("reconcile", campaign_id)

    assert outcome.out == (
        f"{campaign_id}: repaired sentCount 1 → 2; completed (status COMPLETED)\n"
    )


def test_reconcile_words_name_every_repair() -> None:
    report = {
        "campaigns": [
            {
                "campaignId": "cmp_a",
                "expiredLeases": 2,
                "repairedCounters": {
                    "sentCount": {"from": 3, "to": 4},
                    "unknownCount": {"from": 0, "to": 2},
                },
                "reenqueuedRecipients": 5,
                "completed": False,
                "status": "RUNNING",
            },
            {
                "campaignId": "cmp_b",
                "expiredLeases": 0,
                "repairedCounters": {},
                "reenqueuedRecipients": 0,
                "completed": False,
                "status": "PAUSED",
            },
        ]
    }

    assert views.reconcile_words(report).splitlines() == [
        "cmp_a: repaired sentCount 3 → 4, unknownCount 0 → 2; expired 2 lease(s); "
        "re-enqueued 5 recipient(s) (status RUNNING)",
        "cmp_b: nothing to repair (status PAUSED)",
    ]
    assert views.reconcile_words({"campaigns": []}) == (
        "no RUNNING or PAUSED campaign to reconcile"
    )


def test_reconcile_json_keeps_its_shape(cli: Cli) -> None:
    campaign_id = cli.campaign_in("PAUSED")

    [report] = cli.ok("reconcile", campaign_id)["campaigns"]

    assert set(report) == {
        "campaignId",
        "expiredLeases",
        "repairedCounters",
        "reenqueuedRecipients",
        "completed",
        "status",
    }


# -- status --watch --------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [40, 80])
def test_status_watch_on_a_terminal_is_a_live_view_that_fits_its_width(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    campaign_id = cli.populated(national(4))
    cli.ok("start", campaign_id)
    steps: Iterator[dict[str, Any]] = iter(
        [
            {"sentCount": 1},
            {"sentCount": 3, "failedCount": 1, "status": "COMPLETED"},
        ]
    )
    waits: list[float] = []

    def one_step(seconds: float) -> None:  # each wait moves the campaign on: no real waiting
        waits.append(seconds)
        cli.set_campaign(campaign_id, **next(steps))

    monkeypatch.setattr("producer.cli.time.sleep", one_step)
    terminal = _as_terminal(monkeypatch, columns)

    outcome = cli.run("status", campaign_id, "--watch", "--interval", "5")

    assert outcome.code == 0
    assert waits == [5.0, 5.0]
    drawn = terminal.getvalue()
    assert "\x1b[" in drawn  # redrawn in place, not appended
    lines = _screen_lines(drawn)
    _assert_fits([line for line in lines if not line.startswith(("campaignId:", "name:"))], columns)
    frames = " ".join(" ".join(lines).split())
    assert "100.0% 4/4 sent 3 failed 1" in frames
    assert "status: COMPLETED" in lines


@pytest.mark.parametrize("width", [30, 50, 80, 132])
def test_the_status_view_never_runs_past_the_console_width(width: int) -> None:
    campaign = Campaign(
        new_campaign_id(),
        "a campaign with a rather long name for a narrow terminal",
        "tmpl",
        "en_US",
        CampaignStatus.PAUSED,
        total_recipients=100_000,
        sent_count=45_000,
        failed_count=1_234,
        pause_reason="Daily limit reached: 200/200 conversations",
    )
    console = Console(record=True, width=width, file=io.StringIO(), force_terminal=True)

    console.print(views.status_view(campaign))

    lines = console.export_text().splitlines()
    _assert_fits(lines, width)
    text = " ".join(lines)
    assert "PAUSED" in text
    assert "Daily limit reached" in text


@pytest.mark.parametrize("width", [40, 80])
def test_the_tables_fold_to_the_console_width(cli: Cli, width: int) -> None:
    campaign_id, _ = _with_failures(cli)
    console = Console(record=True, width=width, file=io.StringIO(), force_terminal=True)
    page = cli.core().recipients(campaign_id)
    listed = cli.core().list_campaigns()

    console.print(views.recipients_table(console, page["recipients"]))
    console.print(views.campaigns_table(console, listed["campaigns"]))

    _assert_fits(console.export_text().splitlines(), width)


def test_status_watch_json_prints_only_the_final_status_after_waiting(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id = cli.campaign_in("RUNNING")
    monkeypatch.setattr(
        "producer.cli.time.sleep", lambda _: cli.set_campaign(campaign_id, status="PAUSED")
    )

    outcome = cli.run("status", campaign_id, "--watch", "--json")

    assert json.loads(outcome.out)["status"] == "PAUSED"


# -- delivery truth in ``status`` --------------------------------------------------------------


def _delivered_campaign(cli: Cli) -> str:
    campaign_id = new_campaign_id()
    cli.store.add_campaign(
        Campaign(
            campaign_id,
            "delivery",
            "order_update",
            "en_US",
            CampaignStatus.RUNNING,
            total_recipients=8,
            sent_count=6,
            failed_count=1,
            delivered_count=5,
            read_count=2,
            delivery_failed_count=1,
        )
    )
    return campaign_id


def test_status_shows_delivered_read_delivery_failed_and_the_two_rates(cli: Cli) -> None:
    campaign_id = _delivered_campaign(cli)

    outcome = cli.run("status", campaign_id)

    assert outcome.code == 0
    lines = outcome.out.splitlines()
    assert "deliveredCount: 5" in lines
    assert "readCount: 2" in lines
    assert "deliveryFailedCount: 1" in lines
    assert "deliveryRate: 83.3%" in lines  # 5 of 6 sent
    assert "readRate: 40.0%" in lines  # 2 of 5 delivered


def test_status_json_has_the_delivery_keys_and_null_rates_before_anything_was_sent(
    cli: Cli,
) -> None:
    delivered = cli.ok("status", _delivered_campaign(cli))
    fresh = cli.ok("status", cli.create())

    assert {k: delivered[k] for k in ("deliveredCount", "readCount", "deliveryFailedCount")} == {
        "deliveredCount": 5,
        "readCount": 2,
        "deliveryFailedCount": 1,
    }
    assert delivered["deliveryRate"] == pytest.approx(5 / 6)
    assert delivered["readRate"] == pytest.approx(2 / 5)
    assert (fresh["deliveryRate"], fresh["readRate"]) == (None, None)
    assert "deliveryRate: -" in cli.run("status", fresh["campaignId"]).out.splitlines()


@pytest.mark.parametrize("width", [30, 80])
def test_the_status_view_shows_the_delivery_counters_and_rates(width: int) -> None:
    campaign = Campaign(
        new_campaign_id(),
        "c",
        "tmpl",
        "en_US",
        CampaignStatus.RUNNING,
        total_recipients=10,
        sent_count=10,
        delivered_count=8,
        read_count=4,
        delivery_failed_count=2,
    )
    console = Console(record=True, width=width, file=io.StringIO(), force_terminal=True)

    console.print(views.status_view(campaign))

    lines = console.export_text().splitlines()
    _assert_fits(lines, width)
    text = " ".join(" ".join(lines).split())
    for words in (
        "delivered 8",
        "read 4",
        "delivery-failed 2",
        "delivery 80.0%",
        "read rate 50.0%",
    ):
        assert words in text


def _priced_campaign(cli: Cli) -> str:
    campaign_id = new_campaign_id()
    cli.store.add_campaign(
        Campaign(
            campaign_id,
            "priced",
            "order_update",
            "en_US",
            CampaignStatus.COMPLETED,
            total_recipients=12,
            sent_count=12,
            delivered_count=9,
            read_count=4,
            delivery_failed_count=3,
            held_count=1,
            tallies={
                "deliveryFailed:META_131026": 2,
                "deliveryFailed:META_131049": 1,
                "billed:marketing:91": 6,
                "billed:marketing:44": 2,
                "billed:utility:55": 1,
            },
        )
    )
    return campaign_id


def test_status_shows_held_and_delivery_failures_by_code(cli: Cli) -> None:
    campaign_id = _priced_campaign(cli)

    data = cli.ok("status", campaign_id)
    lines = cli.run("status", campaign_id).out.splitlines()

    assert data["heldCount"] == 1
    assert data["deliveryFailures"] == {"META_131026": 2, "META_131049": 1}
    assert "heldCount: 1" in lines
    assert "deliveryFailures: META_131026 2, META_131049 1" in lines


def test_status_without_a_price_table_shows_the_billable_counts_and_no_cost(cli: Cli) -> None:
    campaign_id = _priced_campaign(cli)

    data = cli.ok("status", campaign_id)
    lines = cli.run("status", campaign_id).out.splitlines()

    assert data["billable"] == [
        {"category": "marketing", "callingCode": "44", "count": 2},
        {"category": "marketing", "callingCode": "91", "count": 6},
        {"category": "utility", "callingCode": "55", "count": 1},
    ]
    assert data["cost"] is None
    assert "billable: marketing +44 2, marketing +91 6, utility +55 1" in lines
    assert any(line == "cost: - (no PRICES_FILE)" for line in lines)


def test_status_with_a_price_table_shows_the_estimated_cost(cli: Cli, tmp_path: Path) -> None:
    campaign_id = _priced_campaign(cli)
    prices = tmp_path / "prices.csv"
    prices.write_text(
        "calling_code,category,price,currency\n91,marketing,0.0100,USD\n*,marketing,0.0500,USD\n"
    )
    cli.env(PRICES_FILE=str(prices))

    cost = cli.ok("status", campaign_id)["cost"]
    lines = cli.run("status", campaign_id).out.splitlines()

    # 6 x 0.01 (India) + 2 x 0.05 (the UK, by the * row); utility has no price.
    assert (cost["currency"], cost["estimated"], cost["unpriced"]) == ("USD", "0.1600", 1)
    assert "cost: 0.1600 USD estimated  (1 billable without a price)" in lines
    assert "  - marketing +91: 6 x 0.0100 = 0.0600" in lines
    assert "  - utility +55: 1 x no price" in lines


def test_a_malformed_price_table_is_refused_with_one_line(cli: Cli, tmp_path: Path) -> None:
    campaign_id = _priced_campaign(cli)
    prices = tmp_path / "prices.csv"
    prices.write_text("calling_code,category,price\n91,marketing,free\n")
    cli.env(PRICES_FILE=str(prices))

    line = cli.refused("status", campaign_id, code=EXIT_CONFIG)

    assert f"PRICES_FILE {prices}: line 2: price 'free' is not a number" in line
