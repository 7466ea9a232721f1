"""Read verbs: status, list, events, artifact-show, workspace-path, engines, dead."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli import render
from roost.cli.context import (
    EXIT_BAD_INPUT,
    CliError,
    backend_of,
    ignore_further_interrupts,
    load_registry,
    open_backend,
    run,
    settings_of,
    until_interrupted,
    warn,
)
from roost.cli.fleet import unserved_for, unserved_lines
from roost.runtime import EventType, RuntimeEvent, WorkPage, WorkState
from roost.runtime.backends import WorkBackend
from roost.runtime.models import validate_name
from roost.runtime.workspace import workspace_dir

if TYPE_CHECKING:
    from roost.runtime.plugins import Registry
    from roost.runtime.settings import RoostSettings

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
            "--json/--human",
            help="JSON for scripts (the default) or --human for a readable summary.",
        ),
    ] = True,
) -> None:
    """Show a work item: its runtime meta, latest snapshot and the item itself.

    Unlike the other commands, status prints JSON unless you ask for --human: scripts read
    it (for example to get the artifact id of a finished job), so its default stays
    machine-readable. The JSON has `meta` (state, step, attempts, lease, last error,
    times; `parent_id` and `children_total`/`children_finished` for child work),
    `snapshot` (version, step, data, artifacts) and `item`; an item that spawned children
    adds `children` (each child's meta, in spawn order). Add --human for a short readable
    summary with local times, its parent and its children's states.
    """
    settings = settings_of(ctx)

    async def main() -> None:
        wid = _work_id(work_id)
        async with open_backend(settings) as backend:
            result = await backend.status(wid)
            children = await backend.children(wid) if result.meta.children_total else []
            waiting = await unserved_for(backend, [result.meta, *children], settings.queue)
        for line in unserved_lines(waiting):
            warn(line)
        if as_json and children:
            body = result.model_dump(mode="json")
            body["children"] = [c.model_dump(mode="json") for c in children]
            render.echo_json(body)
        elif as_json:
            render.echo_json(result)
        else:
            render.print_status(result, children)

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
    parent: Annotated[
        str | None,
        typer.Option(
            "--parent", metavar="WORK_ID", help="Only the children of this item, in spawn order."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List work items, most recently updated first (children of one item: --parent)."""
    settings = settings_of(ctx)

    async def main() -> None:
        if parent is not None:
            _work_id(parent)
        async with open_backend(settings) as backend:
            if parent is not None:
                page = await children_page(backend, parent, state, engine, limit, cursor)
            else:
                page = await backend.list_work(
                    state=state, engine=engine, limit=limit, cursor=cursor
                )
            waiting = await unserved_for(backend, page.items, settings.queue)
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
            render.print_table(render.META_HEADERS, rows)
        if page.next_cursor:
            more = f" --parent {parent}" if parent else ""
            warn(f"more: roost list{more} --cursor {page.next_cursor}")

    run(main)


async def children_page(
    backend: WorkBackend,
    parent: str,
    state: WorkState | None,
    engine: str | None,
    limit: int,
    cursor: str | None,
) -> WorkPage:
    """One page of an item's children (the cursor is a position in the spawn order)."""
    if cursor is not None and not cursor.isdigit():
        raise CliError(f"invalid --cursor {cursor!r} for --parent", EXIT_BAD_INPUT)
    await backend.status(parent)  # NotFound: unknown work id
    kids = [
        m
        for m in await backend.children(parent)
        if (state is None or m.state == state) and (engine is None or m.engine == engine)
    ]
    start = int(cursor or 0)
    items = kids[start : start + limit]
    more = start + limit < len(kids)
    return WorkPage(items=items, next_cursor=str(start + limit) if more else None)


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
        async with open_backend(settings) as backend:
            page = await backend.dead_letters(limit=limit, cursor=cursor)
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
            render.print_table(headers, rows)
            warn("retry one with: roost retry <work_id>, or all with: roost retry --all-dead")
        if page.next_cursor:
            warn(f"more: roost dead --cursor {page.next_cursor}")

    run(main)


EVENT_SCAN = 10_000
"""Events read per call when filtering by type (the most the runtime returns at once)."""


def parse_types(values: list[str] | None) -> frozenset[str] | None:
    """``--type committed,done --type dead`` -> the set; nothing given -> ``None`` (all).

    Raises:
        CliError: an unknown event type (exit 2).
    """
    names = {n.strip() for v in values or [] for n in v.split(",") if n.strip()}
    known = {str(t) for t in EventType}
    unknown = sorted(names - known)
    if unknown:
        raise CliError(
            f"--type: unknown event type {unknown[0]!r} (known: {', '.join(sorted(known))})",
            EXIT_BAD_INPUT,
        )
    return frozenset(names) or None


async def read_events(
    backend: WorkBackend,
    work_id: str | None,
    after: str | None,
    limit: int,
    types: frozenset[str] | None,
) -> tuple[list[RuntimeEvent], str]:
    """The events to show, and the stream position to follow from.

    With ``types``, the latest :data:`EVENT_SCAN` events (or, with ``after``, the events
    after it, page by page) are read and the matching ones kept, at most ``limit``.
    """
    if types is None:
        batch = await backend.events(work_id=work_id, after=after, limit=limit)
        return batch, batch[-1].id if batch else (after or "0-0")
    if after is None:
        raw = await backend.events(work_id=work_id, limit=EVENT_SCAN)
        matched = [e for e in raw if e.type in types][-limit:]
        return matched, raw[-1].id if raw else "0-0"
    matched: list[RuntimeEvent] = []
    cursor = after
    while len(matched) < limit:
        page = await backend.events(work_id=work_id, after=cursor, limit=EVENT_SCAN)
        matched += [e for e in page if e.type in types]
        if page:
            cursor = page[-1].id
        if len(page) < EVENT_SCAN:
            break
    if len(matched) > limit:
        matched = matched[:limit]
        cursor = matched[-1].id
    return matched, cursor


def _print_event_table(batch: list[RuntimeEvent]) -> None:
    now = time.time()
    render.print_table(render.EVENT_HEADERS, [render.event_row(e, now) for e in batch])


def _print_event_line(columns: render.EventColumns, event: RuntimeEvent) -> None:
    console = render.terminal()
    if console is None:
        typer.echo(columns.line(event))
    else:
        console.print(columns.styled(event))


async def _follow(
    backend: WorkBackend,
    work_id: str | None,
    batch: list[RuntimeEvent],
    last: str,
    types: frozenset[str] | None,
    as_json: bool,
) -> None:
    """Print ``batch`` in fixed columns, then every new event until Ctrl-C."""
    columns = render.EventColumns(batch)
    if not as_json:
        typer.echo(columns.header())
        for event in batch:
            _print_event_line(columns, event)
        warn("following new events; Ctrl-C to stop")
    async for event in backend.follow_events(work_id=work_id, after=last):
        if types is not None and event.type not in types:
            continue
        if as_json:
            typer.echo(event.model_dump_json())
        else:
            _print_event_line(columns, event)


def events(
    ctx: typer.Context,
    work_id: Annotated[
        str | None,
        typer.Argument(metavar="[WORK_ID]", help="Only this item's events (default: all)."),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option("--after", metavar="EVENT_ID", help="Only events after this event id."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10000, help="At most this many events.")
    ] = 50,
    types: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            metavar="TYPE",
            help="Only events of these types: repeat it or use commas (--type retrying,dead).",
        ),
    ] = None,
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
        wanted = parse_types(types)
        async with open_backend(settings) as backend:
            batch, last = await read_events(backend, wid, after, limit, wanted)
            if as_json:
                for event in batch:
                    typer.echo(event.model_dump_json())
            elif not follow:
                if batch:
                    _print_event_table(batch)
                else:
                    typer.echo("no events")
                return
            if follow:
                await until_interrupted(_follow(backend, wid, batch, last, wanted, as_json))

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
    """Print the work item's workspace directory (its engine's scratch space).

    Each work id has one directory directly under ROOST_WORKSPACE_ROOT: the id itself when
    it is plain (lowercase letters, digits, - and _), else a readable slug and a hash.
    """
    settings = settings_of(ctx)

    async def main() -> None:
        wid = _work_id(work_id)
        async with open_backend(settings) as backend:
            await backend.status(wid)  # unknown ids are bad input
        path = workspace_dir(settings.workspaces, wid)
        if as_json:
            render.echo_json({"work_id": wid, "path": str(path), "exists": path.is_dir()})
            return
        typer.echo(str(path))
        if not path.exists():
            warn("(not created yet: the engine has not used its workspace)")

    run(main)


async def _live_workers(
    settings: RoostSettings, registry: Registry
) -> tuple[str | None, list[dict[str, Any]] | None, str]:
    """``(url, workers, note)``; never starts the embedded server just to look."""
    if not backend_of(settings, registry=registry).server_running():
        return None, None, "the embedded Redis is not running"
    try:
        async with open_backend(settings, registry=registry) as backend:
            return backend.url, await backend.workers(), ""
    except CliError as exc:
        return settings.redis_url, None, str(exc)


def engines(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List installed engines (and any that failed to load), and the live workers."""
    from roost.runtime.plugins import source_of

    settings = settings_of(ctx)

    async def main() -> None:
        registry = load_registry()
        registry.probe()
        installed: list[dict[str, Any]] = [
            {"engine": eid, "source": source_of(f), "status": "ok", "error": None}
            for eid, f in registry.engines.items()
        ]
        installed += [
            {"engine": b.name, "source": b.source, "status": "broken", "error": b.error}
            for b in registry.broken.values()
            if b.engine
        ]
        installed.sort(key=lambda e: e["engine"])
        plugins = [
            {"plugin": b.name, "source": b.source, "error": b.error}
            for b in registry.broken.values()
            if not b.engine
        ]
        url, workers, note = await _live_workers(settings, registry)
        if as_json:
            body = {
                "engines": installed,
                "broken_plugins": plugins,
                "redis": url,
                "workers": workers,
                "note": note or None,
            }
            render.echo_json(body)
            return
        if installed:
            rows = [
                [e["engine"], e["source"], "ok" if e["error"] is None else f"broken: {e['error']}"]
                for e in installed
            ]
            render.print_table(("ENGINE", "SOURCE", "STATUS"), rows)
        else:
            typer.echo("no engines installed (install a plugin, e.g. roost-watchlist)")
        if plugins:
            typer.echo("")
            typer.echo("plugins that failed to load (the engines they provide are missing):")
            for p in plugins:
                typer.echo(f"  {p['plugin']}  {p['error']}  ({p['source']})")
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
            render.print_table(headers, rows)

    run(main)
