"""The fan-out watchlist: check N URLs in parallel (one child each), then summarise.

Payload: ``{"urls": ["http://...", ...], "checks_required": 1, "delay_seconds": 0}``
(``checks_required`` and ``delay_seconds`` go to every child; at most
:data:`MAX_URLS` URLs). Its first step spawns one ``watchlist`` child per URL and waits for
all of them without holding a lease; the next step reads their outcomes and writes a
summary artifact: each URL's verdict, or why its child did not finish.
"""

from __future__ import annotations

from typing import Any, cast

from roost.runtime import PermanentError, Snapshot, WorkItem, step_context

__all__ = ["MAX_URLS", "FanOutWatchlist", "build_fanout"]

MAX_URLS = 100


def _urls(payload: dict[str, Any]) -> list[str]:
    urls: object = payload.get("urls")
    if not isinstance(urls, list) or not urls:
        raise PermanentError("urls is required: a non-empty list of http(s) URLs")
    items = cast("list[object]", urls)
    if len(items) > MAX_URLS:
        raise PermanentError(f"at most {MAX_URLS} urls, not {len(items)}")
    out = [u for u in items if isinstance(u, str) and u]
    if len(out) != len(items):
        raise PermanentError("every url must be a non-empty string")
    return out


class FanOutWatchlist:
    """Spawns a ``watchlist`` child per URL, waits for all, and summarises their verdicts."""

    engine_id = "watchlist-fanout"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        """Validate the payload (a bad one fails at once)."""
        return Snapshot(
            work_id=item.work_id,
            engine=self.engine_id,
            step="spawn",
            data={"urls": _urls(item.payload)},
        )

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        """Spawn the checks, or summarise them once they all finished."""
        ctx = step_context()
        data = dict(snapshot.data)
        if snapshot.step == "spawn":
            child = {
                "checks_required": item.payload.get("checks_required", 1),
                "delay_seconds": item.payload.get("delay_seconds", 0),
            }
            for url in data["urls"]:
                ctx.spawn("watchlist", {"url": url, **child}, keep=["url", "verdict"])
            ctx.wait_for_children("all")
            return snapshot.model_copy(update={"step": "summarise"})
        results: dict[str, str] = {}
        for outcome in await ctx.children():
            url = str(outcome.data.get("url", outcome.work_id))
            if outcome.ok:
                results[url] = str(outcome.data.get("verdict"))
            else:
                why = outcome.error.message if outcome.error else "no error recorded"
                results[url] = f"{outcome.state}: {why}"
        counts: dict[str, int] = {}
        for verdict in results.values():
            key = verdict if verdict in ("reachable", "unreachable", "flaky") else "not checked"
            counts[key] = counts.get(key, 0) + 1
        summary = {"urls": len(results), "verdicts": counts, "results": results}
        artifact = await ctx.put_artifact(summary, kind="json", metadata={"verdicts": counts})
        data["summary"] = summary
        return snapshot.model_copy(
            update={
                "step": "done",
                "data": data,
                "is_finished": True,
                "artifacts": [*snapshot.artifacts, artifact],
            }
        )


def build_fanout(**kwargs: Any) -> FanOutWatchlist:
    """Build the fan-out engine."""
    return FanOutWatchlist(**kwargs)
