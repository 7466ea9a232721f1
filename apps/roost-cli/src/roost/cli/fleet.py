"""``roost workers``: the live workers of a namespace, and work no live worker can take."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli import render
from roost.cli.context import open_backend, run, settings_of
from roost.runtime import WorkMeta, WorkState

if TYPE_CHECKING:
    from roost.runtime.backends import WorkBackend

__all__ = ["unserved", "unserved_for", "unserved_lines", "workers"]

HEADERS = (
    "WORKER",
    "HOST/PID",
    "QUEUE",
    "ENGINES=SLOTS",
    "RUNNING",
    "STEPS",
    "HEARTBEAT",
    "HEALTH",
)


def _slots(w: dict[str, Any]) -> str:
    slots: dict[str, Any] = w.get("slots") or {}
    engines: list[Any] = w.get("engines") or []
    if not slots:
        return ", ".join(str(e) for e in engines) or "-"
    return ", ".join(f"{e}={n}" for e, n in slots.items())


def _health(w: dict[str, Any]) -> str:
    if "healthy" not in w:
        return "-"
    if w["healthy"]:
        return "healthy"
    return f"problem: {render.compact(str(w.get('problem') or '?'), 60)}"


def _row(w: dict[str, Any]) -> list[str]:
    age = w.get("heartbeat_age")
    return [
        str(w.get("worker_id")),
        f"{w.get('host', '?')}/{w.get('pid', '?')}",
        str(w.get("queue", "?")),
        _slots(w),
        f"{w.get('running', 0)}/{w.get('concurrency', '?')}",
        str(w.get("steps", 0)),
        "-" if age is None else f"{float(age):.1f}s ago",
        _health(w),
    ]


async def unserved(backend: WorkBackend, queues: Iterable[str]) -> dict[str, dict[str, int]]:
    """``{queue: {engine: deliveries queued}}`` for engines with queued work and no live worker."""
    out: dict[str, dict[str, int]] = {}
    for queue in dict.fromkeys(queues):
        engines = await backend.unserved_engines(queue)
        if engines:
            out[queue] = engines
    return out


async def unserved_for(
    backend: WorkBackend, items: Iterable[WorkMeta], default_queue: str
) -> dict[str, dict[str, int]]:
    """Like :func:`unserved`, for the engines of the queued ones among ``items`` only."""
    wanted = {(m.queue or default_queue, m.engine) for m in items if m.state == WorkState.QUEUED}
    found = await unserved(backend, sorted({queue for queue, _ in wanted}))
    out: dict[str, dict[str, int]] = {}
    for queue, engines in found.items():
        for engine, n in engines.items():
            if (queue, engine) in wanted:
                out.setdefault(queue, {})[engine] = n
    return out


def unserved_lines(found: dict[str, dict[str, int]]) -> list[str]:
    """One line per engine that has queued work and no live worker."""
    return [
        f"no live worker runs engine {engine} (queue {queue}): {n} queued, waiting for one"
        for queue, engines in found.items()
        for engine, n in engines.items()
    ]


def workers(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the live workers and their engines, and say which queued work has no worker.

    Engines are shown with their slots (steps run at once). Work of an engine that no live
    worker of its queue runs stays queued until one starts; it is listed below the table.
    """
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_backend(settings) as backend:
            live = await backend.workers()
            queues = [settings.queue, *(str(w.get("queue")) for w in live if w.get("queue"))]
            waiting = await unserved(backend, queues)
        if as_json:
            render.echo_json({"workers": live, "unserved": waiting})
            return
        if live:
            live.sort(key=lambda w: (str(w.get("queue")), str(w.get("worker_id"))))
            typer.echo(render.table(HEADERS, [_row(w) for w in live]))
        else:
            typer.echo(f"no live workers (namespace {settings.namespace})")
        for line in unserved_lines(waiting):
            typer.echo(line)

    run(main)
