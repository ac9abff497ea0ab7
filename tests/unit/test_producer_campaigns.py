"""``campaign-producer`` create, populate and their refusals, on the in-memory adapters."""

from __future__ import annotations

import itertools
import time
import uuid
from pathlib import Path

import pytest

from tests.unit.producer_support import (
    PROG,
    Cli,
    e164,
    national,
    unknown_campaign_id,
)

# -- create ----------------------------------------------------------------------------------


def test_create_returns_a_cmp_uuid4_id_for_a_new_draft_campaign(cli: Cli) -> None:
    result = cli.ok("create", "--name", " Diwali offer ", "--template", "diwali_offer")

    campaign_id = result["campaignId"]
    assert result == {"success": True, "campaignId": campaign_id}
    assert campaign_id.startswith("cmp_")
    parsed = uuid.UUID(campaign_id.removeprefix("cmp_"))
    assert parsed.version == 4
    assert campaign_id == f"cmp_{parsed}"
    item = cli.campaign(campaign_id)
    assert {k: item[k] for k in ("campaignId", "name", "templateName", "templateLanguage")} == {
        "campaignId": campaign_id,
        "name": "Diwali offer",
        "templateName": "diwali_offer",
        "templateLanguage": "en_US",
    }
    assert item["status"] == "DRAFT"  # the item's layout (channel, audienceType): on moto
    assert (item["totalRecipients"], item["sentCount"], item["failedCount"]) == (0, 0, 0)
    assert item["createdAt"].endswith("Z")


def test_create_stores_the_template_language(cli: Cli) -> None:
    result = cli.ok("create", "--name", "Oferta", "--template", "oferta", "--language", "pt_BR")

    assert cli.campaign(result["campaignId"])["templateLanguage"] == "pt_BR"


def test_create_gives_every_campaign_its_own_id(cli: Cli) -> None:
    ids = {cli.create() for _ in range(3)}

    assert len(ids) == 3


@pytest.mark.parametrize("name", ["", "   "])
def test_create_refuses_an_empty_name_and_writes_nothing(cli: Cli, name: str) -> None:
    line = cli.refused("create", "--name", name, "--template", "diwali_offer", code=65)

    assert "--name must not be empty" in line
    assert cli.campaign_items() == []


@pytest.mark.parametrize(
    ("option", "value"), [("--template", " "), ("--language", ""), ("--language", "  ")]
)
def test_create_refuses_an_empty_template_or_language_and_writes_nothing(
    cli: Cli, option: str, value: str
) -> None:
    args = {"--name": "Diwali offer", "--template": "diwali_offer", "--language": "en_US"}
    args[option] = value

    line = cli.refused("create", *itertools.chain(*args.items()), code=65)

    assert f"{option} must not be empty" in line
    assert cli.campaign_items() == []


def test_create_without_a_template_is_a_usage_error(cli: Cli) -> None:
    line = cli.refused("create", "--name", "Diwali offer", code=64)

    assert "--template" in line
    assert cli.campaign_items() == []


# -- populate: what gets written -------------------------------------------------------------


def test_populate_stores_the_other_header_columns_as_params_on_each_recipient(cli: Cli) -> None:
    campaign_id = cli.create()

    result = cli.populate(campaign_id, "name,phone,offer\nAsha,9876500001,20%\nRavi,9876500002,\n")

    assert result["inserted"] == 2
    items = cli.recipients(campaign_id)
    assert items["USER#919876500001"]["params"] == [
        {"name": "name", "value": "Asha"},
        {"name": "offer", "value": "20%"},
    ]
    assert items["USER#919876500002"]["params"] == [
        {"name": "name", "value": "Ravi"},
        {"name": "offer", "value": ""},
    ]
    assert {item["status"] for item in items.values()} == {"PENDING"}
    assert {item["attempts"] for item in items.values()} == {0}
    assert {item["phone"] for item in items.values()} == {"919876500001", "919876500002"}


def test_populate_reads_one_phone_per_line_without_params(cli: Cli) -> None:
    campaign_id = cli.create()

    result = cli.populate(campaign_id, "9876500001\n9876500002\n\n9876500003\n")

    assert (result["inserted"], result["duplicates"], result["invalid"]) == (3, 0, [])
    items = cli.recipients(campaign_id)
    assert sorted(items) == [f"USER#91987650000{n}" for n in (1, 2, 3)]
    assert all("params" not in item for item in items.values())
    assert "importLock" not in cli.campaign(campaign_id)  # released when the import ended


def test_populate_normalises_every_spelling_to_e164_digits_without_plus(cli: Cli) -> None:
    campaign_id = cli.create()
    spellings = [
        "9876543210",
        "+91 98765 43211",
        "098765-43212",
        "0091 9876543213",
        "+91 (98765) 43214",
        "919876543215",
    ]

    result = cli.populate(campaign_id, "".join(f'"{s}"\n' for s in spellings))

    assert result["inserted"] == 6
    assert sorted(cli.recipients(campaign_id)) == [f"USER#91987654321{n}" for n in range(6)]


def test_populate_counts_duplicates_within_the_file_once_written(cli: Cli) -> None:
    campaign_id = cli.create()

    result = cli.populate(campaign_id, "9876500001\n+91 98765 00001\n9876500002\n919876500001\n")

    assert (result["inserted"], result["duplicates"]) == (2, 2)
    assert sorted(cli.recipients(campaign_id)) == ["USER#919876500001", "USER#919876500002"]
    assert cli.campaign(campaign_id)["totalRecipients"] == 2


def test_populate_again_counts_present_recipients_as_duplicates_and_never_overwrites_them(
    cli: Cli,
) -> None:
    campaign_id = cli.create()
    cli.populate(campaign_id, "phone,name\n9876500001,Asha\n9876500002,Ravi\n")
    cli.set_recipient(campaign_id, "919876500001", status="SENT", messageId="wamid.ONE")

    again = cli.populate(
        campaign_id, "phone,name\n9876500001,Changed\n9876500002,Ravi\n9876500003,New\n"
    )

    assert (again["inserted"], again["duplicates"]) == (1, 2)
    items = cli.recipients(campaign_id)
    assert items["USER#919876500001"]["status"] == "SENT"
    assert items["USER#919876500001"]["messageId"] == "wamid.ONE"
    assert items["USER#919876500001"]["params"] == [{"name": "name", "value": "Asha"}]
    assert items["USER#919876500003"]["status"] == "PENDING"
    assert cli.campaign(campaign_id)["totalRecipients"] == 3


def test_populate_reports_each_invalid_row_with_line_value_and_reason(cli: Cli) -> None:
    campaign_id = cli.create()

    result = cli.populate(
        campaign_id, "phone,name\n9876500001,A\n12345,B\nnot a number,C\n\n,D\n9876500002,E\n"
    )

    assert result["inserted"] == 2
    assert result["invalidCount"] == 3
    assert [(row["line"], row["value"]) for row in result["invalid"]] == [
        (3, "12345"),
        (4, "not a number"),
        (6, ""),
    ]
    reasons = [row["reason"] for row in result["invalid"]]
    assert reasons[0] == "impossible number length"
    assert reasons[1].startswith("not a phone number")
    assert reasons[2] == "empty value"
    assert sorted(cli.recipients(campaign_id)) == ["USER#919876500001", "USER#919876500002"]


def test_populate_lists_the_first_thousand_invalid_rows_and_counts_them_all(cli: Cli) -> None:
    campaign_id = cli.create()

    result = cli.populate(campaign_id, "9876500001\n" + "12345\n" * 1005)

    assert (result["inserted"], result["invalidCount"], len(result["invalid"])) == (1, 1005, 1000)
    assert result["invalid"][0]["line"] == 2
    assert result["invalid"][-1]["line"] == 1001


def test_populate_total_recipients_is_the_sum_of_what_each_import_inserted(cli: Cli) -> None:
    campaign_id = cli.create()

    first = cli.populate(campaign_id, "".join(f"{p}\n" for p in national(60)))
    second = cli.populate(campaign_id, "".join(f"{p}\n" for p in national(30, start=45)))

    assert (first["inserted"], second["inserted"], second["duplicates"]) == (60, 15, 15)
    assert cli.campaign(campaign_id)["totalRecipients"] == 75
    assert len(cli.recipients(campaign_id)) == 75
    assert cli.ok("status", campaign_id)["totalRecipients"] == 75


def test_populate_with_default_region_us_reads_national_numbers_as_american(cli: Cli) -> None:
    campaign_id = cli.create()

    result = cli.ok(
        "populate",
        campaign_id,
        str(cli.csv("(650) 253-0000\n+91 98765 00001\n9876500002\n")),
        "--default-region",
        "US",
    )

    assert result["inserted"] == 2
    assert [(row["line"], row["value"]) for row in result["invalid"]] == [(3, "9876500002")]
    assert sorted(cli.recipients(campaign_id)) == ["USER#16502530000", "USER#919876500001"]


def test_populate_reads_national_numbers_as_indian_by_default(cli: Cli) -> None:
    campaign_id = cli.create()

    cli.populate(campaign_id, "(650) 253-0000\n")

    assert sorted(cli.recipients(campaign_id)) == ["USER#916502530000"]


def test_populate_skips_numbers_on_the_suppression_list(cli: Cli) -> None:
    campaign_id = cli.create()
    cli.store.suppress("919876500002", "META_131050")

    result = cli.populate(campaign_id, "9876500001\n9876500002\n")

    assert (result["inserted"], result["suppressed"]) == (1, 1)
    assert sorted(cli.recipients(campaign_id)) == ["USER#919876500001"]


def test_populate_adds_recipients_to_a_paused_campaign_and_resume_enqueues_them(
    cli: Cli,
) -> None:
    campaign_id = cli.campaign_in("PAUSED")
    cli.drain()

    result = cli.populate(campaign_id, "9876599999\n")
    cli.ok("resume", campaign_id)

    assert result["inserted"] == 1
    assert cli.campaign(campaign_id)["totalRecipients"] == 3
    phones = [phone for batch in cli.batches() for phone in batch.phones]
    assert sorted(phones) == sorted([*map(e164, national(2)), "919876599999"])


# -- populate: refused input writes nothing ---------------------------------------------------


def _rows(count: int) -> str:
    return "".join(f"{p},Name {p}\n" for p in national(count, start=100))


BAD_FILES = [
    pytest.param(b"", "file is empty", id="empty"),
    pytest.param(b"phone,name\n", "no recipient rows after the header", id="header-only"),
    pytest.param(
        b'9876500101\n"9876500102\n9876500103\n', "malformed CSV", id="unterminated-quote"
    ),
    pytest.param(b"9876500101\n98765\xff00102\n9876500103\n", "line 2: not UTF-8", id="not-utf8"),
    pytest.param(
        ("phone,name\n" + _rows(38) + "9876500999,Name,extra\n" + _rows(10)).encode(),
        "line 40: expected 2 fields, found 3",
        id="field-count-on-line-40-of-50",
    ),
    pytest.param(
        b"mobile,name\n9876500101,Asha\n",
        "expected one phone per line (or a header row with a 'phone' column)",
        id="columns-without-phone-header",
    ),
]


@pytest.mark.parametrize(("content", "expected"), BAD_FILES)
def test_populate_refuses_an_unusable_file_and_writes_no_recipient(
    cli: Cli, content: bytes, expected: str
) -> None:
    campaign_id = cli.populated(["9876500001"])
    path = cli.csv(content)

    line = cli.refused("populate", campaign_id, str(path), code=65)

    assert expected in line
    assert str(path) in line
    assert sorted(cli.recipients(campaign_id)) == ["USER#919876500001"]
    assert cli.campaign(campaign_id)["totalRecipients"] == 1
    assert "importLock" not in cli.campaign(campaign_id)


def test_populate_with_a_bad_line_40_of_50_writes_none_of_the_39_lines_before_it(
    cli: Cli,
) -> None:
    campaign_id = cli.create()
    lines = ["phone,name", *[f"{p},Name" for p in national(38)], "9876599999,Name,extra"]
    lines += [f"{p},Name" for p in national(10, start=38)]
    assert len(lines) == 50

    line = cli.refused("populate", campaign_id, str(cli.csv("\n".join(lines) + "\n")), code=65)

    assert "line 40" in line
    assert cli.recipients(campaign_id) == {}
    assert cli.campaign(campaign_id)["totalRecipients"] == 0


def test_populate_refuses_a_missing_file_with_exit_66(cli: Cli, tmp_path: Path) -> None:
    campaign_id = cli.create()

    line = cli.refused("populate", campaign_id, str(tmp_path / "absent.csv"), code=66)

    assert "File not found" in line
    assert cli.recipients(campaign_id) == {}


def test_populate_refuses_a_directory_with_exit_66(cli: Cli, tmp_path: Path) -> None:
    campaign_id = cli.create()

    line = cli.refused("populate", campaign_id, str(tmp_path), code=66)

    assert "Not a file" in line


def test_populate_refuses_an_unknown_campaign(cli: Cli) -> None:
    campaign_id = unknown_campaign_id()

    line = cli.refused("populate", campaign_id, str(cli.csv("9876500001\n")), code=65)

    assert line == f"{PROG}Campaign not found: {campaign_id}"
    assert cli.all_recipient_items() == []
    assert cli.campaign_items() == []


def test_populate_refuses_a_malformed_campaign_id(cli: Cli) -> None:
    line = cli.refused("populate", "cmp_nope", str(cli.csv("9876500001\n")), code=65)

    assert "Malformed campaign id: 'cmp_nope'" in line
    assert cli.all_recipient_items() == []


@pytest.mark.parametrize("status", ["RUNNING", "COMPLETED", "CANCELLED"])
def test_populate_refuses_a_campaign_that_is_not_draft_or_paused(cli: Cli, status: str) -> None:
    campaign_id = cli.campaign_in(status)
    before = cli.recipients(campaign_id)
    total = cli.campaign(campaign_id)["totalRecipients"]

    line = cli.refused("populate", campaign_id, str(cli.csv("9876599999\n")), code=65)

    assert f"Campaign status is {status}" in line
    assert cli.recipients(campaign_id) == before
    assert cli.campaign(campaign_id)["totalRecipients"] == total


def test_populate_is_refused_while_another_import_holds_the_lock(cli: Cli) -> None:
    campaign_id = cli.create()
    cli.set_campaign(campaign_id, importLock="other-import", importLockUntil=int(time.time()) + 600)

    line = cli.refused("populate", campaign_id, str(cli.csv("9876500001\n")), code=65)

    assert "Another import is running" in line
    assert cli.recipients(campaign_id) == {}
    item = cli.campaign(campaign_id)
    assert item["totalRecipients"] == 0
    assert item["importLock"] == "other-import"  # the holder's lock is left alone


def test_populate_takes_over_an_import_lock_that_expired(cli: Cli) -> None:
    campaign_id = cli.create()
    cli.set_campaign(campaign_id, importLock="dead-import", importLockUntil=int(time.time()) - 5)

    result = cli.populate(campaign_id, "9876500001\n")

    assert result["inserted"] == 1
    assert "importLock" not in cli.campaign(campaign_id)


def test_start_is_refused_while_an_import_holds_the_lock(cli: Cli) -> None:
    campaign_id = cli.populated(national(2))
    cli.set_campaign(campaign_id, importLock="other-import", importLockUntil=int(time.time()) + 600)

    line = cli.refused("start", campaign_id, code=65)

    assert "being populated" in line
    assert cli.campaign(campaign_id)["status"] == "DRAFT"
    assert cli.drain() == []
