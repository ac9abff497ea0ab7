"""The operator core's read side on the in-memory adapters: the newest-first campaign list,
recipient pages and the CSV export, the plain-words meaning of error codes."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest

from campaigns.domain.clock import iso_utc
from campaigns.domain.errors import CampaignNotFound, InvalidInput
from campaigns.domain.meanings import error_meaning
from campaigns.domain.models import Campaign, CampaignStatus, RecipientStatus, new_campaign_id
from campaigns.meta import errorcodes
from campaigns.operator.commands import Producer
from campaigns.operator.cursors import encode_cursor
from tests.unit.producer_support import Cli, e164, national, unknown_campaign_id

HEADER = "phone,status,attempts,errorCode,errorMeaning,messageId,unknownReason,finishedAt"


def _campaigns(cli: Cli, count: int, *, same_second: bool = False) -> list[str]:
    """``count`` campaigns created one second apart (or all at once), oldest first."""
    ids = []
    for n in range(count):
        campaign_id = new_campaign_id()
        created = iso_utc(1_700_000_000 + (0 if same_second else n))
        status = CampaignStatus.RUNNING if n % 2 else CampaignStatus.DRAFT
        cli.store.add_campaign(
            Campaign(campaign_id, f"c{n}", "tmpl", "en_US", status, created_at=created)
        )
        ids.append(campaign_id)
    return ids


def _all_pages(core: Producer, **query: object) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = core.list_campaigns(cursor=cursor, **query)  # type: ignore[arg-type]
        pages.append([c["campaignId"] for c in page["campaigns"]])
        cursor = page["nextCursor"]
        if cursor is None:
            return pages


# -- list ------------------------------------------------------------------------------------


def test_list_is_newest_first_with_progress_percent(cli: Cli) -> None:
    ids = _campaigns(cli, 3)

    listed = cli.core().list_campaigns()

    assert [c["campaignId"] for c in listed["campaigns"]] == ids[::-1]
    assert listed["nextCursor"] is None
    first = listed["campaigns"][0]
    assert first == cli.store.require_campaign(ids[2]).to_public() | {"progressPercent": 0.0}


def test_list_pages_cover_every_campaign_once_newest_first(cli: Cli) -> None:
    ids = _campaigns(cli, 7)

    pages = _all_pages(cli.core(), limit=3)

    assert pages == [ids[6:3:-1], ids[3:0:-1], ids[0:1]]


def test_list_breaks_ties_on_created_at_by_campaign_id_descending(cli: Cli) -> None:
    ids = _campaigns(cli, 5, same_second=True)

    pages = _all_pages(cli.core(), limit=2)

    assert [cid for page in pages for cid in page] == sorted(ids, reverse=True)


def test_list_filters_by_status_across_pages(cli: Cli) -> None:
    ids = _campaigns(cli, 6)  # odd ones RUNNING

    pages = _all_pages(cli.core(), status=CampaignStatus.RUNNING, limit=2)

    assert pages == [[ids[5], ids[3]], [ids[1]]]


def test_list_resumes_after_a_cursor_even_when_new_campaigns_arrived(cli: Cli) -> None:
    ids = _campaigns(cli, 4)
    core = cli.core()
    first = core.list_campaigns(limit=2)
    cli.store.add_campaign(
        Campaign(
            new_campaign_id(),
            "late",
            "t",
            "en_US",
            CampaignStatus.DRAFT,
            created_at=iso_utc(1_800_000_000),
        )
    )

    second = core.list_campaigns(limit=2, cursor=first["nextCursor"])

    assert [c["campaignId"] for c in second["campaigns"]] == [ids[1], ids[0]]


@pytest.mark.parametrize("limit", [0, -1, 201])
def test_list_refuses_a_limit_outside_1_to_200(cli: Cli, limit: int) -> None:
    with pytest.raises(InvalidInput, match=r"^limit must be between 1 and 200$"):
        cli.core().list_campaigns(limit=limit)


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", encode_cursor("only-one"), "x" * 600])
def test_list_refuses_a_cursor_it_did_not_write(cli: Cli, cursor: str) -> None:
    with pytest.raises(InvalidInput, match=r"^invalid cursor$"):
        cli.core().list_campaigns(cursor=cursor)


# -- recipients ------------------------------------------------------------------------------


def _finished(cli: Cli, campaign_id: str) -> None:
    """The first recipient FAILED with 131026 at a known time, the second SENT."""
    phones = sorted(r.phone for r in cli.store.iter_recipients(campaign_id))
    cli.set_recipient(campaign_id, phones[0], status="FAILED", errorCode="META_131026", attempts=1)
    key = (campaign_id, phones[0])
    cli.store.recipients[key] = replace(cli.store.recipients[key], finished_at=1_700_000_000.5)
    cli.set_recipient(campaign_id, phones[1], status="SENT", messageId="wamid.A", attempts=1)


def test_recipients_rows_carry_the_error_meaning_and_the_finish_time(cli: Cli) -> None:
    campaign_id = cli.populated(national(3))
    _finished(cli, campaign_id)

    page = cli.core().recipients(campaign_id)

    assert page["campaignId"] == campaign_id
    assert page["nextCursor"] is None
    assert page["recipients"] == [
        {
            "phone": e164(national(3)[0]),
            "status": "FAILED",
            "attempts": 1,
            "errorCode": "META_131026",
            "errorMeaning": error_meaning("META_131026"),
            "messageId": None,
            "unknownReason": None,
            "finishedAt": "2023-11-14T22:13:20.500Z",
        },
        {
            "phone": e164(national(3)[1]),
            "status": "SENT",
            "attempts": 1,
            "errorCode": None,
            "errorMeaning": None,
            "messageId": "wamid.A",
            "unknownReason": None,
            "finishedAt": None,
        },
        {
            "phone": e164(national(3)[2]),
            "status": "PENDING",
            "attempts": 0,
            "errorCode": None,
            "errorMeaning": None,
            "messageId": None,
            "unknownReason": None,
            "finishedAt": None,
        },
    ]


@pytest.mark.parametrize("limit", [1, 3, 4, 10])
def test_recipient_pages_cover_every_recipient_exactly_once(cli: Cli, limit: int) -> None:
    campaign_id = cli.populated(national(10))
    core = cli.core()
    seen: list[str] = []
    cursor = None
    pages = 0

    while True:
        page = core.recipients(campaign_id, limit=limit, cursor=cursor)
        seen.extend(r["phone"] for r in page["recipients"])
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break

    assert seen == sorted(e164(p) for p in national(10))
    assert pages == -(-10 // limit)  # the last page is never empty


def test_recipient_pages_filter_by_status(cli: Cli) -> None:
    campaign_id = cli.populated(national(6))
    failed = [e164(p) for p in national(6)[1::2]]
    for phone in failed:
        cli.set_recipient(campaign_id, phone, status="FAILED", errorCode="META_131050")
    core = cli.core()

    first = core.recipients(campaign_id, RecipientStatus.FAILED, limit=2)
    rest = core.recipients(campaign_id, RecipientStatus.FAILED, limit=2, cursor=first["nextCursor"])

    assert [r["phone"] for r in first["recipients"] + rest["recipients"]] == failed
    assert rest["nextCursor"] is None


def test_recipients_of_an_unknown_campaign_is_refused(cli: Cli) -> None:
    campaign_id = unknown_campaign_id()

    with pytest.raises(CampaignNotFound):
        cli.core().recipients(campaign_id)


@pytest.mark.parametrize(
    ("campaign_id", "limit", "cursor", "message"),
    [
        ("cmp_nope", 100, None, "Malformed campaign id"),
        (None, 0, None, "^limit must be between 1 and 500$"),
        (None, 501, None, "^limit must be between 1 and 500$"),
        (None, 100, "garbage", "^invalid cursor$"),
        (None, 100, encode_cursor("USER#1"), "^invalid cursor$"),
    ],
)
def test_recipients_refuses_bad_input(
    cli: Cli, campaign_id: str | None, limit: int, cursor: str | None, message: str
) -> None:
    real = cli.populated(national(1))

    with pytest.raises(InvalidInput, match=message):
        cli.core().recipients(campaign_id or real, limit=limit, cursor=cursor)


def test_export_checks_the_campaign_when_called_not_when_read(cli: Cli) -> None:
    with pytest.raises(CampaignNotFound):
        cli.core().export_recipients(unknown_campaign_id())


def test_export_writes_a_header_and_every_row_page_by_page(cli: Cli) -> None:
    campaign_id = cli.populated(national(1200))
    _finished(cli, campaign_id)

    chunks = list(cli.core().export_recipients(campaign_id))

    assert chunks[0] == HEADER + "\n"
    assert len(chunks) == 1 + 3  # the header, then 500 + 500 + 200 rows
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert [r["phone"] for r in rows] == sorted(e164(p) for p in national(1200))
    assert rows[0] == {
        "phone": e164(national(1)[0]),
        "status": "FAILED",
        "attempts": "1",
        "errorCode": "META_131026",
        "errorMeaning": error_meaning("META_131026"),
        "messageId": "",
        "unknownReason": "",
        "finishedAt": "2023-11-14T22:13:20.500Z",
    }


def test_export_of_one_status_holds_only_those_rows(cli: Cli) -> None:
    campaign_id = cli.populated(national(3))
    _finished(cli, campaign_id)

    text = "".join(cli.core().export_recipients(campaign_id, RecipientStatus.SENT))

    assert text.splitlines()[1:] == [f"{e164(national(3)[1])},SENT,1,,,wamid.A,,"]


# -- error meanings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("META_131026", "Undeliverable: the number is not on WhatsApp or its app is too old"),
        ("META_131050", "The user opted out of marketing messages (the number is now suppressed)"),
        ("META_CONNECT", "Could not connect to the Cloud API (nothing was sent)"),
        (
            "META_TIMEOUT",
            "The Cloud API did not answer in time: the message may or may not have been sent",
        ),
        ("META_HTTP_503", "The Cloud API answered HTTP 503 without an error code (server trouble)"),
        (
            "META_999999",
            "Error META_999999: not a code this engine knows; see Meta's error code reference",
        ),
        (
            "lease expired",
            "Error lease expired: not a code this engine knows; see Meta's error code reference",
        ),
    ],
)
def test_error_meaning_says_what_a_code_means_in_plain_words(code: str, words: str) -> None:
    assert Producer.error_meaning(code) == words


def test_error_meaning_of_no_code_is_none() -> None:
    assert (error_meaning(None), error_meaning("")) == (None, None)


def test_every_code_the_engine_classifies_has_a_meaning_of_its_own() -> None:
    generic = error_meaning("META_999999")
    assert generic is not None
    for code in errorcodes._VERDICTS:
        meaning = error_meaning(f"META_{code}")
        assert meaning is not None
        assert not meaning.startswith("Error "), code
