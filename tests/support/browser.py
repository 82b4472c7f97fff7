"""Headless Chromium for the browser tests (tests/test_web_pages.py): Debian's `chromium` driven
through its `chromedriver` (`make test` installs both when missing). Nothing is downloaded:
selenium is given both paths, so its driver manager never runs. A machine without them fails the
test, naming what to install: the page is a product feature, and a skipped check is no check.

Selenium is synchronous; the tests call it in a thread (`asyncio.to_thread`) while the services
run in the test's event loop."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"  # gitignored: screenshots and page sources of the last run
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
T = TypeVar("T")


def _require(path: str) -> str:
    found = shutil.which(Path(path).name) or (path if Path(path).exists() else None)
    if found is None:
        pytest.fail(
            f"{Path(path).name} is not installed: the browser tests need Debian's chromium and chromium-driver "
            "(`make test` installs them as root; else apt-get install chromium chromium-driver)"
        )
    return found


@contextlib.contextmanager
def chromium(
    language: str = "en", width: int = 1280, height: int = 900, downloads: Path | None = None, phone: bool = False
) -> Iterator[Browser]:
    """A headless Chromium whose preferred language is `language` (navigator.languages); with
    `phone`, its viewport is a phone's (`width` x `height` CSS pixels, a touch screen)."""
    options = webdriver.ChromeOptions()
    options.binary_location = _require(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root, where Chromium's own sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        f"--lang={language}",
        f"--accept-lang={language}",
    ):
        options.add_argument(arg)
    prefs: dict[str, Any] = {"intl.accept_languages": language}
    if downloads is not None:
        prefs |= {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    options.add_experimental_option("prefs", prefs)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=_require(CHROMEDRIVER)))
    try:
        if phone:  # a window cannot be made that narrow; the viewport can
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True},
            )
        if downloads is not None:
            driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        yield Browser(driver)
    finally:
        driver.quit()


class Browser:
    def __init__(self, driver: webdriver.Chrome):
        self.driver = driver

    def get(self, url: str) -> None:
        self.driver.get(url)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def wait(self, what: str, condition: Callable[[], T | None], timeout_s: float = 30.0) -> T:
        """The first truthy value of `condition` within the time, else a failure naming `what`."""
        try:
            # A page that re-renders while we poll leaves a found element stale: look again.
            waiting = WebDriverWait(
                self.driver, timeout_s, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
            )
            value = cast(T, waiting.until(lambda _: condition()))
        except TimeoutException:
            self.save("timeout")
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; errors: {self.errors()}") from None
        return value

    def visible(self, css: str, timeout_s: float = 30.0) -> WebElement:
        return self.wait(
            f"{css} to show", lambda: next((e for e in self.all(css) if e.is_displayed()), None), timeout_s
        )

    def errors(self) -> list[str]:
        """What the page logged as errors (a broken bundle shows here)."""
        log: list[dict[str, Any]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        return [e["message"] for e in log if e["level"] == "SEVERE"]

    def paste(self, css: str, text: str) -> None:
        """Replaces the content of the editable element `css` as a paste would (select all, then a
        paste event carrying `text`): what a candidate does, without the editor's auto-indent
        re-indenting typed lines."""
        self.js(
            """const target = document.querySelector(arguments[0]);
            target.focus();
            document.execCommand('selectAll');
            const data = new DataTransfer();
            data.setData('text/plain', arguments[1]);
            target.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));""",
            css,
            text,
        )

    def save(self, name: str) -> Path:
        """A screenshot (and the page's HTML) under test-artifacts/."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        (ARTIFACTS / f"{name}.html").write_text(self.driver.page_source)
        return path

    def screenshot_full(self, path: Path) -> None:
        """The whole page (not only the window), for the README."""
        self.js("window.scrollTo(0, 0)")
        height = int(self.js("return Math.max(document.body.scrollHeight, window.innerHeight)"))
        width = int(self.js("return window.innerWidth"))
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": min(height, 2400), "deviceScaleFactor": 1, "mobile": False},
        )
        time.sleep(0.2)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())
