"""Fixtures for the console: a config with a tenant in New York and a Stripe connection whose
webhook secret is a file, the hub serving the whole API (and so the console) on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright

from hub.api.context import ApiLimits, HubContext
from hub.api.server import open_hub, serving
from hub.config import load_config

STRIPE_SECRET = b"whsec_console_test_5f1c"
STRIPE_CONNECTION = "stripe:acct_demo"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``LEDGERHUB_CONFIG`` for this test: the hub's and the projections' config."""
    (tmp_path / "stripe.secret").write_bytes(STRIPE_SECRET + b"\n")
    path = tmp_path / "ledgerhub.toml"
    path.write_text(
        '[tenants.default]\ntimezone = "America/New_York"\ncurrency = "USD"\n\n'
        f'[[connections]]\nid = "{STRIPE_CONNECTION}"\nconnector = "stripe"\n'
        'webhook_secret = "file:stripe.secret"\n'
    )
    monkeypatch.setenv("LEDGERHUB_CONFIG", str(path))
    return path


@pytest.fixture
async def hub(dsn: str, config: Path) -> AsyncIterator[HubContext]:
    async with open_hub(dsn, load_config(config), ApiLimits()) as context:
        yield context


@pytest.fixture
async def api(hub: HubContext) -> AsyncIterator[str]:
    """The hub's base URL: the whole API, console included, on a free port of 127.0.0.1."""
    async with serving(hub, "127.0.0.1", 0) as url:
        yield url


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
]
"""Debian's Chromium, headless, with nothing talking to the network behind the test's back."""
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium driven by Playwright; skipped only off CI when it is not installed."""
    if not CHROMIUM.exists():  # noqa: ASYNC240 (one stat before the browser starts)
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


_WIDER = """(width) => [
    ...(document.documentElement.scrollWidth > width
        ? [`the page scrolls to ${document.documentElement.scrollWidth}`] : []),
    ...[...document.querySelectorAll("body *")]
    .filter((e) => !e.closest(".scroll") && e.getBoundingClientRect().right > width + 1)
    .map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)]"""
"""What sticks out to the right of a page ``width`` wide (a table scrolls in its own box)."""


class Screenshots:
    """Writes each page at 1280 px and at a phone's 390 px into ``directory`` (not committed:
    ``$LEDGERHUB_SCREENSHOTS``, else the test's temporary directory)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.taken: list[Path] = []

    async def __call__(self, page: Page, name: str) -> None:
        for label, size in (("1280", DESKTOP), ("390", PHONE)):
            await page.set_viewport_size(size)
            path = self.directory / f"{name}-{label}.png"
            await page.screenshot(path=str(path), full_page=True)
            self.taken.append(path)
            wider = await page.evaluate(_WIDER, size["width"])
            assert not wider, f"{name} at {label} px: wider than the screen: {wider}"
        await page.set_viewport_size(DESKTOP)


@pytest.fixture
def shots(tmp_path: Path, request: pytest.FixtureRequest) -> Screenshots:
    base = os.environ.get("LEDGERHUB_SCREENSHOTS")
    directory = Path(base) / request.node.name if base else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return Screenshots(directory)


async def sign_in(page: Page, api: str, key: str) -> None:
    """Sign in through the form, as a person does."""
    await page.goto(f"{api}/console/sign-in")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{api}/console/")
