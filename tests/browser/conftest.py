"""Fixtures for the console's browser tests: Debian's Chromium driven by Playwright, a real
Redis, a worker on a background event loop, and the console served by uvicorn in a thread.

Without ``/usr/bin/chromium`` these tests skip, unless ``CI`` is set: then they fail, so CI
never passes without having run them (``.ci/run`` installs the browser).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from roost.console import serve_in_thread
from roost.runtime import (
    Registry,
    RoostSettings,
    Snapshot,
    WorkItem,
    get_plugin_manager,
    step_context,
)
from roost_testkit.background import Background
from roost_testkit.engines import HashChainEngine
from roost_testkit.settings import fast_settings
from roost_testkit.waiting import SignalCollector

CHROMIUM = os.environ.get("ROOST_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps calling out to Google's services on a closed network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium binary; skip without it (fail when ``CI`` is set)."""
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path is None:
        message = f"no Chromium at {CHROMIUM}: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {message}")
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    """One headless Chromium per test module.

    Not per session: Playwright's sync API keeps its own event loop running in the main
    thread while it is open, and every asyncio test collected after the browser tests then
    fails with "Runner.run() cannot be called from a running event loop".
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page at 1280x900 that fails the test on any script error or unexpected dialog."""
    yield from _page(browser, {"viewport": {"width": 1280, "height": 900}})


@pytest.fixture
def dark_page(browser: Any) -> Iterator[Any]:
    """The same, in a browser that prefers a dark colour scheme."""
    yield from _page(browser, {"viewport": {"width": 1280, "height": 900}, "color_scheme": "dark"})


@pytest.fixture
def phone_page(browser: Any) -> Iterator[Any]:
    """The same, 390 px wide (a phone), with a touch screen."""
    yield from _page(
        browser,
        {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    )


def _page(browser: Any, options: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(**options)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("dialog", lambda d: errors.append(f"unexpected dialog: {d.message}"))
    pg.set_default_timeout(10_000)
    try:
        yield pg
    finally:
        context.close()
    assert errors == [], errors  # no script errors, no alert() from page data


@pytest.fixture
def screenshots() -> Path:
    """Where screenshots go (``test-artifacts/console``, gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


WIDTHS = (1280, 800, 390)


class PageTools:
    """Screenshots that also check for sideways scrolling, and a reload detector."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def overflow(page: Any) -> int:
        """How far the page scrolls sideways (0: not at all)."""
        return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))

    def shoot(self, page: Any, name: str, widths: tuple[int, ...] = WIDTHS) -> None:
        """Full-page screenshots at each width; the page must not scroll sideways at any."""
        height = page.viewport_size["height"] if page.viewport_size else 900
        original = page.viewport_size
        for width in widths:
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(150)
            overflow = self.overflow(page)
            assert overflow <= 0, f"{name} scrolls sideways at {width}px by {overflow}px"
            path = self.root / f"{name}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            assert path.stat().st_size > 5_000
        if original:
            page.set_viewport_size(original)

    @staticmethod
    def mark(page: Any) -> None:
        """Set a marker that a reload would erase."""
        page.evaluate("window.__noReload = 42")

    @staticmethod
    def not_reloaded(page: Any) -> None:
        assert page.evaluate("window.__noReload") == 42, "the page was reloaded"


@pytest.fixture
def tools(screenshots: Path) -> PageTools:
    return PageTools(screenshots)


HOSTILE_MD = """# Weekly report

Checked **3** sources; see the [summary](#summary) and the table.

| source | status |
|---|---|
| a | ok |

<script>window.__pwned = 1</script>
<img src=x onerror="window.__pwned = 2">
[click me](javascript:window.__pwned=3)

## Summary

All reachable.
"""


class NotesEngine:
    """One step that stores a Markdown report (with hostile HTML in it) and finishes."""

    engine_id = "notes"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id, data={})

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        art = await step_context().put_artifact(HOSTILE_MD, kind="md", metadata={"pages": 1})
        return snapshot.model_copy(update={"step": "done", "is_finished": True, "artifacts": [art]})


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> RoostSettings:
    return fast_settings(redis_url, tmp_path / "home", history=2)


@pytest.fixture
def runtime(settings: RoostSettings) -> Iterator[Background]:
    """A swarm, and a worker (hash-chain, notes and signal-collector engines) once started."""
    registry = Registry.load(get_plugin_manager(autoload=False))
    rt = Background(settings, registry, [HashChainEngine(), NotesEngine(), SignalCollector()])
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def console_url(settings: RoostSettings) -> Iterator[str]:
    """The console on a free loopback port, served by uvicorn in a thread."""
    with serve_in_thread(settings) as url:
        yield url
