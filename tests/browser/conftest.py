"""The console in a real browser: the app (``create_app`` on the in-memory world) served by
uvicorn on 127.0.0.1, and Debian's headless Chromium driven by selenium through Debian's
chromedriver. Selenium Manager is never asked for anything (the driver's path is given and
``SE_OFFLINE`` is set), so nothing is downloaded; without Chromium the test fails, it does
not skip (``.ci/run`` installs ``chromium`` and ``chromium-driver``)."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from api.app import create_app
from campaigns.settings import Settings, load_settings
from tests.unit.producer_support import SETTINGS_VARIABLES, MemoryWorld

OPERATOR = "console-tester"
OPERATOR_KEY = "console-key-4b1d9e7a3c55"
WINDOW = (1280, 900)  # the size of docs/console.png
STARTUP_TIMEOUT_S = 10
CHROMIUM_NAMES = ("chromium", "chromium-browser")
DRIVER_NAMES = ("chromedriver", "chromium-driver")


def _which(names: tuple[str, ...]) -> str | None:
    for name in names:
        path = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/lib/chromium")
        if path:
            return path
    return None


def chromium_paths() -> tuple[str, str]:
    """Debian's chromium and chromedriver, or the test fails saying what to install."""
    browser, driver = _which(CHROMIUM_NAMES), _which(DRIVER_NAMES)
    if browser is None or driver is None:
        missing = [n for n, p in (("chromium", browser), ("chromium-driver", driver)) if not p]
        pytest.fail(
            "the console's browser test needs Debian's headless Chromium: "
            f"apt-get install {' '.join(missing)} (.ci/run installs them)",
            pytrace=False,
        )
    return browser, driver


@dataclass
class Served:
    url: str
    world: MemoryWorld
    settings: Settings


class _Server(uvicorn.Server):
    """uvicorn in a thread: no signal handlers, and an event once it accepts connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No host variable reaches the settings; Selenium Manager stays offline; structlog's
    configuration (create_app's logging) is restored after."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SE_OFFLINE", "true")
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def served() -> Iterator[Served]:
    """The real app on the in-memory world, served by uvicorn on a free 127.0.0.1 port."""
    settings = load_settings(
        operator_api_keys=f"{OPERATOR}:{OPERATOR_KEY}",
        meta_access_token="sandbox-token",
        meta_phone_number_id="100000000000001",
    )
    world = MemoryWorld()
    app = create_app(settings, build=world.build)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, ws="none", lifespan="off")
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(STARTUP_TIMEOUT_S), "uvicorn did not start"
        yield Served(f"http://127.0.0.1:{port}", world, settings)
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT_S)
        listener.close()


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    directory = tmp_path / "downloads"
    directory.mkdir()
    return directory


@pytest.fixture
def browser(tmp_path: Path, downloads: Path) -> Iterator[webdriver.Chrome]:
    binary, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--no-sandbox",  # CI containers run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--lang=en-US",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(15)
        # Headless Chromium saves downloads only when told where (the CSV link's file).
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        yield driver
    finally:
        driver.quit()
