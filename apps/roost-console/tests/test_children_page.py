"""An item's page shows its children (states, progress) and a child's page its parent."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.testclient import TestClient

from roost_testkit.engines import HashChainEngine
from roost_testkit.family import FanOutEngine

Seeder = Callable[..., list[str]]


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_item_page_shows_children_and_the_childs_page_its_parent(
    client: TestClient, seed: Seeder
) -> None:
    bad = {"steps": 1, "mode": "raise"}
    (parent,) = seed(
        [{"engine": "fanout", "payload": {"children": 3, "child_payloads": [{}, bad, {}]}}],
        engines=[FanOutEngine(), HashChainEngine(max_attempts=1)],
    )
    html = client.get(f"/work/{parent}").text
    text = text_of(html)
    assert "Children" in text and "3 of 3 finished" in text
    section = html[html.index('id="children"') :]
    section = section[: section.index("</section>")]
    kids = re.findall(r'href="/work/([0-9a-f]{32})"', section)
    assert len(kids) == 3
    states = re.findall(r'data-state="(\w+)"', section)
    assert states == ["done", "dead", "done"]
    child = client.get(f"/work/{kids[1]}").text
    parent_dd = child[child.index('id="parent-link"') :]
    assert f'href="/work/{parent}"' in parent_dd[: parent_dd.index("</dd>")]
    # An item without children has no such section.
    assert 'id="children"' not in child
    api = client.get(f"/api/work/{parent}").json()
    assert [c["work_id"] for c in api["children"]] == kids
    assert [c["state"] for c in api["children"]] == ["done", "dead", "done"]
    assert api["meta"]["children_total"] == 3 and api["meta"]["children_finished"] == 3
    assert "children" not in client.get(f"/api/work/{kids[0]}").json()
