"""An operator's day in a real browser: live lists, bulk retry, the timeline, past errors,
Markdown artifacts, dark mode and a phone's width."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from roost.runtime import Registry, RoostSettings, get_plugin_manager
from roost_testkit.background import Background

pytestmark = pytest.mark.browser

DEAD = {"mode": "raise", "steps": 2}
SLOW = {"mode": "sleep", "seconds": 0.3, "steps": 6}
FLAKY = {"mode": "raise", "fail_times": 1, "steps": 3, "delay": 1.5}
"""Every step fails on its first attempt and succeeds on its second; 1.5 s between steps."""


def dead_items(runtime: Any, n: int) -> list[str]:
    runtime.start_worker()
    ids = [runtime.enqueue(DEAD, max_attempts=1) for _ in range(n)]
    for work_id in ids:
        runtime.wait_state(work_id, "dead")
    runtime.stop_worker()
    return ids


def luminance(css_color: str) -> float:
    r, g, b = (int(x) for x in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_the_work_list_updates_live(runtime: Any, console_url: str, page: Page, tools: Any) -> None:
    page.goto(console_url + "/work")
    expect(page.locator("#live")).to_have_attribute("data-status", "on")
    expect(page.locator("#work-region")).to_contain_text("No work yet")
    tools.mark(page)

    runtime.start_worker()
    work_id = runtime.enqueue(SLOW)
    row = page.locator(f'#work-region tr[data-work="{work_id}"]')
    expect(row.locator(".badge")).to_have_text("running")  # arrived without a reload
    second = runtime.enqueue({"steps": 1})
    expect(page.locator(f'#work-region tr[data-work="{second}"]')).to_be_visible()
    tools.shoot(page, "work-list")
    runtime.wait_state(work_id, "done")
    expect(row.locator(".badge")).to_have_text("done")
    tools.not_reloaded(page)


def test_the_failed_list_updates_live_and_keeps_a_selection(
    runtime: Any, console_url: str, page: Page
) -> None:
    (first,) = dead_items(runtime, 1)
    page.goto(console_url + "/failed")
    expect(page.locator("#live")).to_have_attribute("data-status", "on")
    box = page.locator(f'tr[data-work="{first}"] input[name="work_id"]')
    box.check()
    expect(page.locator("#bulk-count")).to_have_text("1 selected")
    page.evaluate("window.__noReload = 42")

    runtime.start_worker()
    later = runtime.enqueue(DEAD, max_attempts=1)
    new_row = page.locator(f'#failed-region tr[data-work="{later}"]')
    expect(new_row.locator(".badge")).to_have_text("dead")  # arrived without a reload
    expect(page.locator('[data-count-of="dead"]')).to_have_text("2")
    expect(box).to_be_checked()  # the list was re-rendered, the selection kept
    expect(page.locator("#bulk-count")).to_have_text("1 selected")
    assert page.evaluate("window.__noReload") == 42


def test_bulk_retry_of_a_selection_asks_first(
    runtime: Any, console_url: str, page: Page, tools: Any
) -> None:
    a, b, c = dead_items(runtime, 3)
    page.goto(console_url + "/failed")
    retry = page.locator('#bulk button[value="retry"]')
    expect(retry).to_be_disabled()  # nothing selected yet
    for work_id in (a, b):
        page.locator(f'tr[data-work="{work_id}"] input[name="work_id"]').check()
    expect(page.locator("#bulk-count")).to_have_text("2 selected")

    retry.click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Retry 2 selected item(s)?")
    page.locator("#confirm-dialog button[value=cancel]").click()  # keep them
    expect(dialog).to_be_hidden()
    assert [runtime.state(w) for w in (a, b, c)] == ["dead", "dead", "dead"]

    retry.click()
    expect(dialog).to_be_visible()
    page.locator("#confirm-ok").click()
    expect(page.locator("#bulk-summary")).to_have_text("Retried 2 of 2")
    expect(page.locator('tr[data-ok="yes"]')).to_have_count(2)
    expect(page.locator(f'tr[data-work="{a}"] .badge')).to_have_text("queued")
    tools.shoot(page, "bulk-result")
    assert [runtime.state(w) for w in (a, b, c)] == ["queued", "queued", "dead"]


def test_retry_all_dead_of_an_engine(runtime: Any, console_url: str, page: Page) -> None:
    ids = dead_items(runtime, 2)
    page.goto(console_url + "/failed")
    page.locator('form.retry-all input[name="engine"]').fill("hashchain")
    page.locator("#retry-all-dead").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_contain_text("Retry every dead item of engine hashchain?")
    page.locator("#confirm-ok").click()
    expect(page.locator("#bulk-summary")).to_have_text("Retried 2 of 2")
    assert [runtime.state(w) for w in ids] == ["queued", "queued"]
    page.get_by_role("link", name="Back").first.click()
    expect(page.locator("#failed-region")).to_contain_text("No dead work.")


def test_the_timeline_shows_steps_retries_and_waits_as_they_happen(
    runtime: Any, console_url: str, page: Page, tools: Any
) -> None:
    runtime.start_worker()
    work_id = runtime.enqueue(FLAKY)
    runtime.wait_state(work_id, "scheduled")  # the first step saved after one retry
    page.goto(f"{console_url}/work/{work_id}")
    tools.mark(page)
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("delay of 1.5 s it asked for")
    expect(timeline).not_to_contain_text("finished at")
    # the rest arrives while we watch: two more steps, each failing once first
    runtime.wait_state(work_id, "done")
    expect(page.locator("#timeline-summary")).to_contain_text("6 step attempts, 3 of them failed")
    steps = page.locator("#timeline tr.span-step")
    expect(steps).to_have_count(6)
    expect(page.locator('#timeline tr.span-step[data-status="failed"]')).to_have_count(3)
    expect(page.locator('#timeline tr.span-step[data-status="ok"]')).to_have_count(3)
    expect(timeline).to_contain_text("retry backoff of")
    expect(timeline).to_contain_text("finished at v4")
    expect(timeline).to_contain_text("failed: RuntimeError: step from version 1 failed on purpose")
    worker = runtime.status(work_id).meta  # done: no lease any more, but the rows name it
    assert worker.state == "done"
    expect(steps.first.locator("td").nth(3)).to_contain_text(":")  # host:pid:id of the worker
    # the error of an earlier attempt is shown as past now that later ones succeeded
    card = page.locator("#last-error")
    expect(card).to_have_class(re.compile(r"\bpast\b"))
    expect(card.locator("h2")).to_have_text("Earlier error")
    expect(page.locator("#err-past")).to_be_visible()
    tools.shoot(page, "timeline")
    tools.not_reloaded(page)


def test_a_dead_item_is_never_said_to_retry(runtime: Any, console_url: str, page: Page) -> None:
    (work_id,) = dead_items(runtime, 1)
    page.goto(f"{console_url}/work/{work_id}")
    dead_event = page.locator('#item-events li[data-type="dead"]')
    expect(dead_event).to_contain_text("no attempts left")
    expect(page.locator("#item-events")).not_to_contain_text("retry in")
    expect(page.locator("#timeline")).not_to_contain_text("retry")
    card = page.locator("#last-error")
    expect(card.locator("h2")).to_have_text("Last error")  # current: nothing succeeded after it


def test_markdown_artifacts_render_safely_and_link_back(
    runtime: Any, console_url: str, page: Page, tools: Any
) -> None:
    runtime.start_worker()
    work_id = runtime.enqueue({}, engine="notes")
    runtime.wait_state(work_id, "done")
    page.goto(f"{console_url}/work/{work_id}")
    page.locator("#artifacts-body a", has_text="view").first.click()
    md = page.locator("#markdown")
    expect(md.locator("h1")).to_have_text("Weekly report")
    expect(md.locator("table td").first).to_have_text("a")
    expect(md).to_contain_text("<script>window.__pwned = 1</script>")  # shown as text
    expect(md.locator("script, img")).to_have_count(0)
    expect(md.locator('a[href^="javascript"]')).to_have_count(0)
    assert page.evaluate("window.__pwned === undefined")
    owner = page.locator("#artifact-owner")
    expect(owner).to_contain_text("Produced by work")
    tools.shoot(page, "artifact-markdown")
    owner.get_by_role("link", name="Back to the item →").click()
    page.wait_for_url(f"**/work/{work_id}")


def test_dark_mode_follows_the_system(
    runtime: Any, console_url: str, dark_page: Page, tools: Any
) -> None:
    dead_items(runtime, 1)
    for path, name in (("/", "overview-dark"), ("/failed", "failed-dark")):
        dark_page.goto(console_url + path)
        colors = dark_page.evaluate(
            """() => {
                const css = el => getComputedStyle(el);
                const card = document.querySelector('.card');
                return {bg: css(document.body).backgroundColor, ink: css(document.body).color,
                        card: css(card).backgroundColor};
            }"""
        )
        assert luminance(colors["bg"]) < 0.15, colors
        assert luminance(colors["card"]) < 0.2, colors
        assert luminance(colors["ink"]) > 0.7, colors  # light text on the dark page
        tools.shoot(dark_page, name, widths=(1280, 390))


def test_every_page_fits_a_phone(
    runtime: Any, console_url: str, phone_page: Page, tools: Any
) -> None:
    page = phone_page
    (dead,) = dead_items(runtime, 1)
    runtime.start_worker()
    notes = runtime.enqueue({}, engine="notes")
    running = runtime.enqueue({**SLOW, "steps": 500, "note": "x" * 300}, idempotency_key="k" * 120)
    runtime.wait_state(notes, "done")
    runtime.wait_state(running, "running")
    artifact = runtime.status(notes).snapshot.artifacts[0].artifact_id
    pages = {
        "overview": "/",
        "work": "/work",
        "failed": "/failed",
        "events": "/events",
        "running": f"/work/{running}",
        "dead": f"/work/{dead}",
        "artifact": f"/artifacts/{artifact}?work={notes}",
    }
    for name, path in pages.items():
        page.goto(console_url + path)
        page.wait_for_timeout(300)  # let live regions settle
        tools.shoot(page, f"phone-{name}", widths=(390,))
    page.goto(console_url + "/work")
    page.locator(f'tr[data-work="{running}"] input[name="work_id"]').check()
    page.locator('#bulk button[value="cancel"]').click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    assert tools.overflow(page) <= 0
    page.locator("#confirm-ok").click()
    expect(page.locator("#bulk-summary")).to_have_text("Cancelled 1 of 1")
    tools.shoot(page, "phone-bulk-result", widths=(390,))


def test_work_no_worker_runs_is_announced_until_one_starts(
    runtime: Any, settings: RoostSettings, console_url: str, page: Page, tools: Any
) -> None:
    hash_only = Background(settings, Registry.load(get_plugin_manager(autoload=False)))
    try:
        hash_only.start_worker(concurrency=3)
        page.goto(console_url + "/")
        expect(page.locator("#live")).to_have_attribute("data-status", "on")
        expect(page.locator("#workers-body")).to_contain_text("hashchain=3")
        tools.mark(page)

        work_id = runtime.enqueue({}, engine="notes")
        notice = page.locator("#unserved")
        expect(notice).to_contain_text("No live worker runs engine notes: 1 queued, waiting for")
        item = page.context.new_page()
        errors: list[str] = []
        item.on("pageerror", lambda exc: errors.append(str(exc)))
        item.goto(f"{console_url}/work/{work_id}")
        expect(item.locator("#live")).to_have_attribute("data-status", "on")
        expect(item.locator("#item-unserved")).to_be_visible()
        expect(item.locator("#item-unserved")).to_contain_text("No live worker runs engine notes")
        tools.shoot(page, "overview-unserved")
        tools.shoot(item, "work-unserved")

        runtime.start_worker()  # runs the notes engine too
        runtime.wait_state(work_id, "done")
        expect(notice).to_have_count(0)
        expect(item.locator('[data-f="state"] .badge')).to_have_text("done")
        expect(item.locator("#item-unserved")).to_be_hidden()
        tools.not_reloaded(page)
        assert errors == []
    finally:
        hash_only.close()
