"""The console in a real browser: it shows work, updates live, and its buttons work."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from roost.console import queries
from roost.redis import RedisSwarm
from roost.runtime import RuntimeEvent

pytestmark = pytest.mark.browser

SLOW = {"mode": "sleep", "seconds": 0.35, "steps": 8}


def test_overview_shows_work_and_updates_live(
    runtime: Any, console_url: str, page: Page, tools: Any
) -> None:
    page.goto(console_url + "/")
    expect(page.locator("#live")).to_have_attribute("data-status", "on")
    expect(page.locator("#live-work")).to_contain_text("Nothing is running or waiting")
    tools.mark(page)

    runtime.start_worker()
    work_id = runtime.enqueue(SLOW)
    row = page.locator(f'#live-work tr[data-work="{work_id}"]')
    expect(row).to_be_visible()  # arrived without a reload
    expect(row.locator(".badge")).to_have_text("running")
    expect(page.locator("#recent-events")).to_contain_text("saved v2")
    expect(page.locator('[data-count="running"] .tile-n')).to_have_text("1")
    tools.shoot(page, "overview")

    runtime.wait_state(work_id, "done")
    expect(row).to_have_count(0)
    expect(page.locator('[data-count="done"] .tile-n')).to_have_text("1")
    expect(page.locator("#tp-summary")).to_contain_text("1 items finished")
    tools.not_reloaded(page)


def test_detail_updates_live_as_steps_commit(
    runtime: Any, console_url: str, page: Page, tools: Any
) -> None:
    runtime.start_worker()
    work_id = runtime.enqueue({**SLOW, "steps": 10, "note": "watch me"})
    runtime.wait_state(work_id, "running")
    page.goto(f"{console_url}/work/{work_id}")
    expect(page.locator("h1")).to_have_text(work_id)
    expect(page.locator("#live")).to_have_attribute("data-status", "on")
    start = int(page.locator('[data-f="version"]').first.inner_text())
    tools.mark(page)

    # versions climb on the page as the worker commits steps
    page.wait_for_function(
        """n => parseInt(document.querySelector('[data-f="version"]').textContent) >= n
            && parseInt(document.getElementById('snapshot-tree').dataset.version) >= n""",
        arg=start + 2,
    )
    # (any entry: on a loaded machine the item may have finished by now, so that the newest
    # entry already says so)
    expect(page.locator("#item-events li.ev", has_text="saved v").first).to_be_visible()
    expect(page.locator('[data-f="lease"]')).to_contain_text("epoch")
    expect(page.locator(".tree").first).to_contain_text("watch me")
    # kept versions (ROOST_HISTORY=2) and the replay choices follow too
    expect(page.locator("#versions-box ol.versions > li")).to_have_count(2)
    expect(page.locator("#replay-version option").first).not_to_have_text("latest snapshot (v1)")
    tools.shoot(page, "work-detail")

    runtime.wait_state(work_id, "done")
    expect(page.locator('[data-f="state"] .badge')).to_have_text("done")
    expect(page.locator('[data-f="version"]').first).to_have_text("11")
    expect(page.locator("#item-events li.ev").first).to_contain_text("finished at v11")
    expect(page.locator('form.action[action^="/actions/cancel/"]')).to_be_hidden()
    tools.not_reloaded(page)


def test_retry_button_moves_dead_work_back_to_queued(
    runtime: Any, console_url: str, page: Page, tools: Any
) -> None:
    runtime.start_worker()
    work_id = runtime.enqueue({"mode": "raise", "steps": 2}, max_attempts=1)
    runtime.wait_state(work_id, "dead")
    runtime.stop_worker()  # so the retried item stays queued for us to see

    page.goto(f"{console_url}/failed")
    expect(page.locator(f'tr[data-work="{work_id}"] .badge')).to_have_text("dead")
    page.locator(f'tr[data-work="{work_id}"] a.wid').click()
    expect(page.locator("#last-error")).to_contain_text("failed on purpose")
    tools.shoot(page, "work-dead")

    retry = page.locator('form.action[action^="/actions/retry/"] button')
    retry.click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Retry work {work_id}?")
    page.locator("#confirm-ok").click()

    page.wait_for_url(f"**/work/{work_id}?done=retried")
    expect(page.locator(".notice")).to_contain_text("Queued again")
    expect(page.locator('[data-f="state"] .badge')).to_have_text("queued")
    assert runtime.state(work_id) == "queued"


def test_keeping_it_in_the_dialog_changes_nothing(
    runtime: Any, console_url: str, page: Page
) -> None:
    work_id = runtime.enqueue({"steps": 1})  # no worker: it stays queued
    page.goto(f"{console_url}/work/{work_id}")
    page.locator('form.action[action^="/actions/cancel/"] button').click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    page.locator("#confirm-dialog button[value=cancel]").click()
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    assert runtime.state(work_id) == "queued"


def test_hostile_payload_stays_text(runtime: Any, console_url: str, page: Page) -> None:
    hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    work_id = runtime.enqueue({"steps": 1, "note": hostile})
    page.goto(f"{console_url}/work/{work_id}")
    expect(page.locator(".tree").first).to_contain_text(hostile)
    page.goto(f"{console_url}/work?q={work_id[:6]}")
    expect(page.locator(f'tr[data-work="{work_id}"]')).to_be_visible()
    assert page.evaluate("window.__pwned === undefined")


def test_timeline_loads_after_the_page_when_events_are_slow(
    runtime: Any, console_url: str, page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.start_worker()
    work_id = runtime.enqueue({"steps": 2})
    runtime.wait_state(work_id, "done")
    real = RedisSwarm.events

    async def slow_events(self: RedisSwarm, **kw: Any) -> list[RuntimeEvent]:
        await asyncio.sleep(0.6)  # as on a namespace with a very long event stream
        return await real(self, **kw)

    monkeypatch.setattr(RedisSwarm, "events", slow_events)
    response = page.goto(f"{console_url}/work/{work_id}")
    assert response is not None and f'data-pending="{queries.ITEM_EVENTS}"' in response.text()
    timeline = page.locator("#item-events li.ev")
    expect(timeline).to_have_count(5)  # enqueued, started, committed, committed, done
    expect(timeline.first).to_contain_text("finished at v3")
    expect(page.locator("#item-events li.empty")).to_have_count(0)
