"""Read verbs: status, list, events, artifact-show, workspace-path, engines, dead."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from roost.cli import render
from roost.cli.context import (
    EXIT_BAD_INPUT,
    CliError,
    ignore_further_interrupts,
    load_registry,
    open_swarm,
    run,
    settings_of,
    warn,
)
from roost.cli.fleet import unserved_for, unserved_lines
from roost.redis.server import EmbeddedServer
from roost.runtime import Registry, RoostSettings, RuntimeEvent, WorkState
from roost.runtime.models import validate_name

__all__ = [
    "artifact_show",
    "dead",
    "engines",
    "events",
    "list_work",
    "status",
    "workspace_path",
]

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _work_id(value: str) -> str:
    try:
        return validate_name("work id", value)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None


def status(
    ctx: typer.Context,
    work_id: Annotated[str, typer.Argument(help="The id `roost enqueue` printed.")],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json/--human", help="JSON (the default, as the seed shows) or a readable tree."
        ),
    ] = True,
) -> None:
    """Show a work item: its runtime meta, latest snapshot and the item itself.

    The default output is JSON with top-level `meta` (state, step, attempts, lease, last
    error, times), `snapshot` (version, step, data, artifacts) and `item`.
    """
    settings = settings_of(ctx)

    async def main() -> None:
        wid = _work_id(work_id)
        async with open_swarm(settings) as swarm:
            result = await swarm.status(wid)
            waiting = await unserved_for(swarm, [result.meta], settings.queue)
        for line in unserved_lines(waiting):
            warn(line)
        if as_json:
            render.echo_json(result)
        else:
            typer.echo(render.status_tree(result))

    run(main)


def list_work(
    ctx: typer.Context,
    state: Annotated[
        WorkState | None, typer.Option("--state", help="Only items in this state.")
    ] = None,
    engine: Annotated[
        str | None, typer.Option("--engine", help="Only items of this engine.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Page size.")] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Continue after the page that printed it.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List work items, most recently updated first."""
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_swarm(settings) as swarm:
            page = await swarm.list_work(state=state, engine=engine, limit=limit, cursor=cursor)
            waiting = await unserved_for(swarm, page.items, settings.queue)
        for line in unserved_lines(waiting):
            warn(line)
        if as_json:
            render.echo_json(page)
            return
        if not page.items:
            typer.echo("no work items" + (f" in state {state}" if state else ""))
        else:
            now = time.time()
            rows = [render.meta_row(m, now) for m in page.items]
            typer.echo(render.table(render.META_HEADERS, rows))
        if page.next_cursor:
            warn(f"more: roost list --cursor {page.next_cursor}")

    run(main)


def dead(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Page size.")] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Continue after the page that printed it.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List dead letters: items whose step failed on every allowed attempt."""
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_swarm(settings) as swarm:
            page = await swarm.dead_letters(limit=limit, cursor=cursor)
        if as_json:
            render.echo_json(page)
            return
        if not page.items:
            typer.echo("no dead letters")
        else:
            now = time.time()
            rows: list[list[str]] = []
            for m in page.items:
                err = m.last_error
                last = f"{err.type}: {render.compact(err.message, 60)}" if err else "-"
                rows.append(
                    [
                        m.work_id,
                        m.engine,
                        m.step or "-",
                        str(m.version),
                        str(m.attempts),
                        render.when(m.updated_at, now),
                        last,
                    ]
                )
            headers = ("WORK ID", "ENGINE", "STEP", "VER", "ATT", "DIED", "LAST ERROR")
            typer.echo(render.table(headers, rows))
            warn("retry one with: roost retry <work_id>")
        if page.next_cursor:
            warn(f"more: roost dead --cursor {page.next_cursor}")

    run(main)


def _print_events(batch: list[RuntimeEvent], as_json: bool, header: bool) -> None:
    if as_json:
        for event in batch:
            typer.echo(event.model_dump_json())
        return
    now = time.time()
    rows = [render.event_row(e, now) for e in batch]
    text = render.table(render.EVENT_HEADERS, rows)
    lines = text.splitlines()
    typer.echo("\n".join(lines if header else lines[1:]))


def events(
    ctx: typer.Context,
    work_id: Annotated[
        str | None, typer.Argument(help="Only this item's events (default: all).")
    ] = None,
    after: Annotated[
        str | None, typer.Option("--after", help="Only events after this event id.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10000, help="At most this many events.")
    ] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until Ctrl-C.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per line (JSON Lines).")
    ] = False,
) -> None:
    """Show recent runtime events (oldest first), or tail them live with --follow."""
    settings = settings_of(ctx)

    async def main() -> None:
        wid = _work_id(work_id) if work_id is not None else None
        async with open_swarm(settings) as swarm:
            batch = await swarm.events(work_id=wid, after=after, limit=limit)
            if batch or not follow:
                if batch:
                    _print_events(batch, as_json, header=True)
                elif not as_json:
                    typer.echo("no events")
            if not follow:
                return
            last = batch[-1].id if batch else (after or "0-0")
            if not as_json:
                warn("following new events; Ctrl-C to stop")
            async for event in swarm.follow_events(work_id=wid, after=last):
                _print_events([event], as_json, header=False)

    try:
        run(main)
    except KeyboardInterrupt:
        ignore_further_interrupts()


def artifact_show(
    ctx: typer.Context,
    artifact_id: Annotated[str, typer.Argument(help="The artifact id (a SHA-256).")],
    ext: Annotated[
        str | None,
        typer.Option("--ext", help="The artifact kind (file extension), e.g. json."),
    ] = None,
    info: Annotated[
        bool,
        typer.Option("--info", help="Print the artifact's description (JSON), not its content."),
    ] = False,
) -> None:
    """Print an artifact's content (from ROOST_ARTIFACT_ROOT; Redis is not needed)."""
    settings = settings_of(ctx)

    async def main() -> None:
        store = load_registry().artifact_store(settings.artifact_url)
        if info:
            render.echo_json(await store.stat(artifact_id, ext))
            return
        content = await store.read(artifact_id, ext)
        typer.echo(content, nl=not content.endswith(b"\n"))

    run(main)


def workspace_path(
    ctx: typer.Context,
    work_id: Annotated[str, typer.Argument(help="The work item.")],
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"work_id", "path", "exists"} as JSON.')
    ] = False,
) -> None:
    """Print the work item's workspace directory (its engine's scratch space)."""
    settings = settings_of(ctx)

    async def main() -> None:
        wid = _work_id(work_id)
        async with open_swarm(settings) as swarm:
            await swarm.status(wid)  # unknown ids are bad input
        path = settings.workspaces / wid
        if as_json:
            render.echo_json({"work_id": wid, "path": str(path), "exists": path.is_dir()})
            return
        typer.echo(str(path))
        if not path.exists():
            warn("(not created yet: the engine has not used its workspace)")

    run(main)


def _source(factory: Any) -> str:
    explicit = getattr(factory, "roost_source", None)
    if explicit:
        return str(explicit)
    module = getattr(factory, "__module__", "?")
    name = getattr(factory, "__qualname__", type(factory).__qualname__)
    return f"{module}.{name}"


async def _live_workers(
    settings: RoostSettings, registry: Registry
) -> tuple[str | None, list[dict[str, Any]] | None, str]:
    """``(url, workers, note)``; never starts the embedded server just to look."""
    if not settings.redis_url and not EmbeddedServer(settings.home / "redis").status().running:
        return None, None, "the embedded Redis is not running"
    try:
        async with open_swarm(settings, registry=registry) as swarm:
            return swarm.url, await swarm.workers(), ""
    except CliError as exc:
        return settings.redis_url, None, str(exc)


def engines(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List installed engines, and the live workers if Redis is reachable."""
    settings = settings_of(ctx)

    async def main() -> None:
        registry = load_registry()
        installed = [
            {"engine": eid, "source": _source(f)} for eid, f in sorted(registry.engines.items())
        ]
        url, workers, note = await _live_workers(settings, registry)
        if as_json:
            body = {"engines": installed, "redis": url, "workers": workers, "note": note or None}
            render.echo_json(body)
            return
        if installed:
            rows = [[e["engine"], e["source"]] for e in installed]
            typer.echo(render.table(("ENGINE", "SOURCE"), rows))
        else:
            typer.echo("no engines installed (install a plugin, e.g. roost-watchlist)")
        typer.echo("")
        if workers is None:
            typer.echo(f"live workers: unknown ({note})")
        elif not workers:
            typer.echo(f"live workers: none (namespace {settings.namespace})")
        else:
            now = time.time()
            rows = [
                [
                    str(w.get("worker_id")),
                    str(w.get("queue")),
                    ",".join(w.get("engines") or []),
                    str(w.get("concurrency")),
                    str(w.get("running", 0)),
                    str(w.get("steps", 0)),
                    render.when(float(w.get("started") or 0), now),
                ]
                for w in workers
            ]
            typer.echo(f"live workers (namespace {settings.namespace}):")
            headers = ("WORKER", "QUEUE", "ENGINES", "CONC", "RUNNING", "STEPS", "STARTED")
            typer.echo(render.table(headers, rows))

    run(main)
