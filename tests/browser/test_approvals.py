"""Approving and rejecting in a real browser: the Approvals view, the item page, the dialog."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def needs_approval(runtime: Any, ask: str) -> str:
    work_id = runtime.enqueue({"approval": ask}, engine="collector")
    runtime.wait_state(work_id, "awaiting")
    return work_id


def test_approve_from_the_approvals_view_with_a_note(
    runtime: Any, console_url: str, page: Page, tools: Any
) -> None:
    runtime.start_worker()
    work_id = needs_approval(runtime, "Deploy <script>x</script> to prod?")
    page.goto(console_url + "/approvals")
    row = page.locator(f'tr[data-work="{work_id}"]')
    expect(row).to_contain_text("Deploy <script>x</script> to prod?")  # shown, not run
    tools.shoot(page, "approvals")
    row.locator('form.decision[action^="/approvals/approve/"] input[name="note"]').fill("ok, go")
    row.locator('form.decision[action^="/approvals/approve/"] button').click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Approve work {work_id}?")
    page.locator("#confirm-ok").click()

    page.wait_for_url(f"**/work/{work_id}?done=approved")
    expect(page.locator(".notice")).to_contain_text("Approved")
    meta = runtime.wait_state(work_id, "done")
    assert meta.state == "done"
    decisions = runtime.status(work_id).snapshot.data["decisions"]
    assert decisions == [{"decision": "approved", "note": "ok, go", "sender": "console"}]


def test_reject_from_the_item_page(runtime: Any, console_url: str, page: Page) -> None:
    runtime.start_worker()
    work_id = needs_approval(runtime, "Spend $40?")
    page.goto(f"{console_url}/work/{work_id}")
    card = page.locator("#approval")
    expect(card).to_contain_text("Spend $40?")
    expect(card).to_contain_text("round")  # the details
    card.locator('form.decision[action^="/approvals/reject/"] input[name="note"]').fill("no")
    card.locator('form.decision[action^="/approvals/reject/"] button').click()
    expect(page.locator("#confirm-dialog")).to_contain_text(f"Reject work {work_id}?")
    page.locator("#confirm-ok").click()
    page.wait_for_url(f"**/work/{work_id}?done=rejected")
    runtime.wait_state(work_id, "done")
    decisions = runtime.status(work_id).snapshot.data["decisions"]
    assert decisions == [{"decision": "rejected", "note": "no", "sender": "console"}]
