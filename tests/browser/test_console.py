"""The executor console used as an operator would, in headless Chromium: the old "Campaign
Executor" page's whole flow against the real app (on the in-memory world, its sender failing
a few numbers), from sign-in to sign-out. Every wait is an explicit, bounded WebDriverWait
on what the page shows; nothing sleeps."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from api.console import CONTENT_SECURITY_POLICY
from campaigns.domain.errors import CampaignHalted, RecipientRejected
from campaigns.domain.models import DeliveryReport, DeliveryStatus
from tests.browser.conftest import OPERATOR, OPERATOR_KEY, WINDOW, Served
from tests.unit.producer_support import e164, national

T = TypeVar("T")
WAIT_S = 6  # the longest wait: one auto-refresh interval (2 s) and the round trips
POLL_S = 0.05  # how often a wait looks again (selenium's default, 0.5 s, would be most of the run)
REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "console.png"
PHONES = national(60)
INVALID_ROW = "12345"
# The sender refuses these numbers (two in the first batch, one in the second).
REFUSED = {
    PHONES[3]: "META_131026",
    PHONES[7]: "META_131026",
    PHONES[31]: "META_131049",
}
# What the browser logs as errors on purpose: the sign-in page asking who is signed in (401)
# and the wrong key refused (401).
EXPECTED_LOG = re.compile(r"/api/session - Failed to load resource: .* 401 ")
# A page being replaced under a wait (navigation, a re-rendered row): look again.
IGNORED = (NoSuchElementException, StaleElementReferenceException)
CREATE = {"templateName": "diwali_offer", "channel": "WHATSAPP", "audienceType": "CSV"}
ACTION_BUTTONS = ("action-start", "action-pause", "action-resume", "action-cancel")


class Console:
    """The page, read and driven by what a person sees: ids, labels, text."""

    def __init__(self, driver: webdriver.Chrome, served: Served) -> None:
        self.driver = driver
        self.served = served

    def wait(self, condition: Callable[[webdriver.Chrome], T], what: str) -> T:
        wait = WebDriverWait(self.driver, WAIT_S, poll_frequency=POLL_S, ignored_exceptions=IGNORED)
        try:
            return wait.until(condition)
        except TimeoutException:
            raise AssertionError(f"gave up waiting for {what}: {self.diagnosis()}") from None

    def diagnosis(self) -> str:
        """What the page says went wrong (its banner) and what the browser logged."""
        try:
            banner = self.driver.execute_script(
                "const p = document.getElementById('problem'); return p ? p.textContent : ''"
            )
        except WebDriverException:
            banner = "?"
        return f"page problem={banner!r}, browser log={self.problems()}"

    def open(self, path: str) -> None:
        self.driver.get(self.served.url + path)

    def ready(self, page: str) -> None:
        """The page has loaded and its script has wired the handlers."""
        self.wait(
            lambda d: (
                d.execute_script(
                    "return document.readyState === 'complete' && document.body !== null"
                    " && document.body.dataset.page + ':' + document.body.dataset.ready"
                )
                == f"{page}:true"
            ),
            f"the {page} page to be ready",
        )

    def by_id(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def text(self, element_id: str) -> str:
        return self.by_id(element_id).text

    def type(self, element_id: str, value: str) -> None:
        field = self.by_id(element_id)
        field.clear()
        field.send_keys(value)

    def click(self, element_id: str) -> None:
        self.wait(lambda d: self.by_id(element_id).is_enabled(), f"{element_id} to be enabled")
        self.by_id(element_id).click()

    def wait_text(self, element_id: str, wanted: str) -> str:
        self.wait(lambda d: wanted in d.find_element(By.ID, element_id).text, f"{wanted!r}")
        return self.text(element_id)

    def status(self) -> str:
        return self.text("campaign-status")

    def settled(self) -> bool:
        """No action of the page's is in flight (its controls are final)."""
        return self.by_id("campaign").get_attribute("aria-busy") != "true"

    def wait_status(self, wanted: str) -> None:
        self.wait(lambda d: self.status() == wanted and self.settled(), f"status {wanted}")

    def progress(self) -> float:
        return float(self.by_id("campaign-progress").get_attribute("value") or "nan")

    def enabled_actions(self) -> set[str]:
        return {
            button.removeprefix("action-")
            for button in ACTION_BUTTONS
            if self.by_id(button).is_enabled()
        }

    def rows(self, table_id: str) -> list[list[str]]:
        table = self.by_id(table_id)
        return [
            [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
        ]

    def log(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        return entries

    def problems(self) -> list[str]:
        """The browser console's errors: script errors, CSP violations, failed loads."""
        return [
            entry["message"]
            for entry in self.log()
            if entry["level"] == "SEVERE" and not EXPECTED_LOG.search(entry["message"])
        ]


def api(served: Served, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A call to the app from outside the browser, with the operator's key."""
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    return httpx.request(method, served.url + path, headers=headers, timeout=WAIT_S, **kwargs)


def recipients_csv(tmp_path: Path) -> Path:
    """The operator's file: a header, 60 numbers, one of them twice, and one that is no number."""
    lines = ["phone", *PHONES[:30], INVALID_ROW, PHONES[0], *PHONES[30:]]
    path = tmp_path / "diwali-recipients.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def save_screenshot(driver: webdriver.Chrome, tmp_path: Path) -> Path:
    """Each run writes the mid-campaign view to ``tmp_path``; ``UPDATE_SCREENSHOT=1`` also
    refreshes the committed ``docs/console.png``."""
    shot = tmp_path / "console.png"
    width, height = WINDOW
    # The window's viewport is smaller than the window: pin the viewport itself for the shot.
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        assert driver.save_screenshot(str(shot))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == WINDOW  # the IHDR chunk's width and height
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, SCREENSHOT)
    return shot


def sign_in(console: Console) -> None:
    console.open("/")
    console.ready("signin")  # no session: the console sends the operator to sign in
    assert console.driver.current_url == console.served.url + "/signin"
    console.type("operator-key", "not-the-key")
    console.click("signin-submit")
    console.wait_text("signin-error", "not valid")
    console.type("operator-key", OPERATOR_KEY)
    console.click("signin-submit")
    console.ready("console")
    assert console.wait_text("operator-name", OPERATOR) == f"Signed in as {OPERATOR}"


def create_and_upload(console: Console, tmp_path: Path) -> str:
    console.type("create-name", "Diwali offer")
    console.type("create-template", "diwali_offer")
    console.click("create-submit")
    console.wait_text("notice", "Created campaign cmp_")
    console.wait(lambda d: console.settled(), "the creation to finish")
    campaign_id = console.text("campaign-id")
    assert console.text("campaign-title") == "Diwali offer"
    assert console.status() == "Draft"
    assert console.enabled_actions() == {"start", "cancel"}
    assert not console.by_id("execute-batch").is_enabled()
    # The new campaign heads the list (newest first).
    console.wait(
        lambda d: (
            d.find_element(By.CSS_SELECTOR, "#campaign-list .pick .name").text == "Diwali offer"
        ),
        "the new campaign in the list",
    )

    console.by_id("upload-file").send_keys(str(recipients_csv(tmp_path)))
    console.click("upload-submit")
    summary = console.wait_text("upload-summary", "imported")
    assert "60 recipients imported" in summary
    assert "1 duplicate skipped" in summary
    assert "1 invalid row" in summary
    [[line, value, reason]] = console.rows("invalid-table")
    assert (line, value) == ("32", INVALID_ROW)
    assert reason
    console.wait_text("count-total", "60")
    assert console.text("count-pending") == "60"
    return campaign_id


def run_batches(console: Console, served: Served, campaign_id: str) -> None:
    console.click("action-start")
    console.wait_status("Running")
    assert console.enabled_actions() == {"pause", "cancel"}
    assert console.progress() == 0

    console.click("execute-batch")
    assert console.wait_text("batch-result", "Processed 25") == (
        "Processed 25: 23 sent, 2 failed, 0 unknown."
    )
    console.wait(lambda d: console.progress() == 41.7, "the bar at 25 of 60")
    assert console.text("progress-text") == "41.7%"
    assert (console.text("count-sent"), console.text("count-failed")) == ("23", "2")

    # A batch sent elsewhere (the API, as a consumer would): the live view catches up alone.
    assert api(served, "POST", f"/api/campaigns/{campaign_id}/execute-batch").status_code == 200
    console.wait(lambda d: console.progress() == 83.3, "the auto-refresh to move the bar")
    console.wait_text("count-failed", "3")
    console.wait(lambda d: len(console.rows("failed-table")) == 3, "the third failure")


def check_delivery(console: Console, served: Served, campaign_id: str) -> None:
    """Status webhooks arrive (applied to the store as the receipts loop would): the page's
    delivery section catches up on its own."""
    store = served.world.store
    sent = [r.phone for r in store.iter_recipients(campaign_id) if r.status.value == "SENT"]
    delivered, failed = sent[:10], sent[10]
    for index, phone in enumerate(delivered):
        status = DeliveryStatus.READ if index < 4 else DeliveryStatus.DELIVERED
        store.apply_delivery(
            DeliveryReport(
                campaign_id, phone, status, 1e9, None, None, None, "marketing", billable=True
            )
        )
    store.apply_delivery(
        DeliveryReport(campaign_id, failed, DeliveryStatus.FAILED, 1e9, None, "META_131026", None)
    )

    console.wait_text("count-delivered", "10")
    assert (console.text("count-read"), console.text("count-delivery-failed")) == ("4", "1")
    assert console.text("rate-delivery") == f"{100 * 10 / len(sent):.1f}%"
    assert console.text("rate-read") == "40.0%"
    assert console.text("delivery-failures") == "Delivery failures by code: META_131026 1."
    assert console.text("delivery-cost").startswith("Billable deliveries: 10.")


def check_failures(console: Console, served: Served, campaign_id: str) -> None:
    shown = console.rows("failed-table")
    listed = api(served, "GET", f"/api/campaigns/{campaign_id}/recipients?status=FAILED").json()
    expected = [[r["phone"], r["errorCode"], r["errorMeaning"]] for r in listed["recipients"]]
    assert [row[:3] for row in shown] == expected
    assert {row[0]: row[1] for row in shown} == {e164(p): code for p, code in REFUSED.items()}
    for _, code, meaning in (row[:3] for row in shown):
        assert meaning
        assert meaning != code


def pause_and_resume(console: Console) -> None:
    console.click("action-pause")
    console.wait_status("Paused")
    assert console.enabled_actions() == {"resume", "cancel"}
    assert not console.by_id("execute-batch").is_enabled()
    reason = console.text("pause-reason")
    assert reason.startswith("Paused since ")
    assert reason.endswith(": Paused by operator. Resume when you are ready.")
    assert console.by_id("upload-submit").is_enabled()  # a paused campaign takes recipients

    console.click("action-resume")
    console.wait_status("Running")
    assert not console.by_id("pause-reason").is_displayed()
    assert console.enabled_actions() == {"pause", "cancel"}


def halted_by_meta(console: Console, served: Served) -> None:
    """Meta restricts the account mid-batch: the engine pauses, the page says why in words."""
    served.world.sender.script[e164(PHONES[52])] = [
        CampaignHalted("META_131031", "account", "Account restricted or locked (META_131031)")
    ]
    console.click("execute-batch")
    assert console.wait_text("batch-result", "paused") == (
        "Processed 2: 2 sent, 0 failed, 0 unknown. "  # the halted one stays pending
        "The campaign paused: Account restricted or locked (META_131031)."
    )
    console.wait_status("Paused")
    assert console.text("pause-reason").endswith(
        ": Account restricted or locked (META_131031)."
        " The WhatsApp Business account is restricted by Meta."
    )
    assert console.enabled_actions() == {"resume", "cancel"}


def download_failed_csv(console: Console, campaign_id: str, downloads: Path) -> None:
    link = console.by_id("failed-csv")
    href = link.get_attribute("href")
    assert href == f"{console.served.url}/api/campaigns/{campaign_id}/recipients.csv?status=FAILED"
    link.click()
    done = downloads / f"{campaign_id}-recipients.csv"  # the API's attachment name
    console.wait(lambda d: done.is_file() and done.stat().st_size > 0, "the CSV download")
    rows = list(csv.DictReader(io.StringIO(done.read_text(encoding="utf-8"))))
    assert {row["phone"]: row["errorCode"] for row in rows} == {
        e164(p): code for p, code in REFUSED.items()
    }
    assert {row["status"] for row in rows} == {"FAILED"}
    assert all(row["errorMeaning"] for row in rows)


def cancel(console: Console) -> None:
    console.click("action-cancel")
    console.wait(lambda d: console.by_id("cancel-confirm").is_displayed(), "the confirmation")
    console.click("cancel-no")  # thought better of it
    assert not console.by_id("cancel-confirm").is_displayed()
    assert console.status() == "Paused"

    console.click("action-cancel")
    console.click("cancel-yes")
    console.wait_status("Cancelled")
    assert console.enabled_actions() == set()
    assert not console.by_id("execute-batch").is_enabled()


def check_narrow_screen(console: Console, tmp_path: Path) -> None:
    """On a phone-sized window everything still fits: no sideways scrolling."""
    console.driver.set_window_size(390, 844)
    try:
        console.wait(
            lambda d: d.execute_script(
                "return document.documentElement.scrollWidth <= window.innerWidth"
            ),
            "the page to fit 390 px",
        )
        assert console.by_id("action-cancel").is_displayed()
        console.driver.save_screenshot(str(tmp_path / "console-narrow.png"))
    finally:
        console.driver.set_window_size(*WINDOW)


def sign_out(console: Console) -> None:
    console.click("signout")
    console.ready("signin")
    assert console.driver.get_cookie("ce_session") is None
    console.open("/")
    console.ready("signin")  # the console is closed until the next sign-in


def test_an_operator_runs_a_campaign_from_the_console(
    browser: webdriver.Chrome, served: Served, tmp_path: Path, downloads: Path
) -> None:
    for phone, code in REFUSED.items():
        served.world.sender.script[e164(phone)] = [RecipientRejected(code, "refused")]
    console = Console(browser, served)

    sign_in(console)
    cookie = browser.get_cookie("ce_session")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    campaign_id = create_and_upload(console, tmp_path)
    run_batches(console, served, campaign_id)
    check_failures(console, served, campaign_id)
    check_delivery(console, served, campaign_id)
    save_screenshot(browser, tmp_path)
    pause_and_resume(console)
    halted_by_meta(console, served)
    download_failed_csv(console, campaign_id, downloads)
    check_narrow_screen(console, tmp_path)
    cancel(console)

    # The key never left the sign-in request: not in a URL, not in the browser's storage.
    storage = browser.execute_script(
        "return JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
    )
    assert OPERATOR_KEY not in storage
    assert OPERATOR_KEY not in browser.current_url
    assert console.problems() == []
    sign_out(console)


def test_the_console_pages_forbid_everything_but_their_own_origin(served: Served) -> None:
    for path in ("/", "/signin"):
        response = api(served, "GET", path)
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "default-src 'self'" in CONTENT_SECURITY_POLICY
        assert b"<script>" not in response.content
        assert b" on" + b"click=" not in response.content
    script = api(served, "GET", "/static/console.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")


def test_a_campaign_created_with_its_file_and_one_loaded_by_id(
    browser: webdriver.Chrome, served: Served, tmp_path: Path
) -> None:
    console = Console(browser, served)
    sign_in(console)
    other = api(served, "POST", "/api/campaigns/create", json=CREATE | {"name": "Older one"})
    other_id = other.json()["campaignId"]

    # One form: the campaign and its recipients.
    console.type("create-name", "Holi offer")
    console.type("create-template", "holi_offer")
    console.by_id("create-file").send_keys(str(recipients_csv(tmp_path)))
    console.click("create-submit")
    console.wait_text("notice", "and uploaded diwali-recipients.csv")
    console.wait(lambda d: console.settled(), "the creation to finish")
    assert "60 recipients imported" in console.text("upload-summary")
    assert console.text("count-total") == "60"
    names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#campaign-list .name")]
    assert names == ["Holi offer", "Older one"]  # newest first

    console.type("load-id", "cmp_not-a-campaign")
    console.click("load-submit")
    console.wait_text("problem", "Not a campaign ID")
    console.type("load-id", other_id)
    console.click("load-submit")
    console.wait_text("campaign-title", "Older one")
    assert console.text("problem") == ""
    assert console.status() == "Draft"
    assert browser.current_url.endswith(f"#{other_id}")
    browser.refresh()  # the campaign on view survives a reload (its id is in the fragment)
    console.ready("console")
    console.wait_text("campaign-title", "Older one")
    assert console.problems() == []
