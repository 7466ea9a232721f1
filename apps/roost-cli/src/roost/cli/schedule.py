"""``roost schedule add|list|pause|resume|remove|run-now``: recurring work.

A schedule belongs to the queue it was added in (``ROOST_QUEUE`` / ``--queue``); that
queue's running workers enqueue one item per tick.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from roost.cli import render
from roost.cli.common import RoostGroup, verb
from roost.cli.context import (
    EXIT_BAD_INPUT,
    CliError,
    load_registry,
    open_backend,
    run,
    settings_of,
)
from roost.cli.operate import parse_payload
from roost.runtime import BadInput

if TYPE_CHECKING:
    from roost.redis.schedules import Schedule, Schedules
    from roost.runtime.backends import WorkBackend

__all__ = ["HEADERS", "schedule_app", "schedule_row"]

schedule_app = typer.Typer(
    cls=RoostGroup,
    help="Recurring work: each tick of a schedule enqueues one item (workers of its queue fire "
    "the ticks).",
    no_args_is_help=True,
)

HEADERS = ("NAME", "WHEN", "ENGINE", "NEXT RUN", "LAST RUN", "LAST ITEM", "ITEM STATE", "RUNS")

NameArg = Annotated[str, typer.Argument(help="The schedule's name.", show_default=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _schedules(backend: WorkBackend) -> Schedules:
    """The Redis backend's schedules (imported here: only ``roost schedule`` needs them)."""
    from roost.redis.plugin import swarm_of

    return swarm_of(backend).schedules


def _name(value: str) -> str:
    from roost.redis.schedule_data import check_schedule_name

    try:
        return check_schedule_name(value)
    except BadInput as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None


def _summary(s: Schedule) -> str:
    where = f"queue {s.queue}"
    if s.paused:
        return f"schedule {s.name} ({s.recurrence.describe()}, {where}): paused"
    nxt = render.when(s.next_run) if s.next_run else "never (the expression matches no more)"
    return f"schedule {s.name} ({s.recurrence.describe()}, {where}): next run {nxt}"


def _show(s: Schedule, as_json: bool) -> None:
    if as_json:
        render.echo_json(s)
    else:
        typer.echo(_summary(s))


def schedule_row(s: Schedule, now: float | None = None) -> list[str]:
    """One line of ``roost schedule list``."""
    when = s.recurrence.describe()
    options = [f"missed: {s.missed}"] + (["skip if running"] if s.skip_if_running else [])
    last = "-"
    if s.last_at:
        last = f"{render.ago(s.last_at, now)} ({s.last_outcome})"
    return [
        s.name,
        f"{when}; {', '.join(options)}",
        s.engine,
        "paused" if s.paused else render.when(s.next_run, now),
        last,
        s.last_work_id or "-",
        str(s.last_state) if s.last_state else "-",
        f"{s.fired} fired, {s.skipped} skipped",
    ]


@schedule_app.command("add")
@verb()
def add(
    ctx: typer.Context,
    name: NameArg,
    engine: Annotated[str, typer.Option("--engine", help="The engine of the items it makes.")],
    payload: Annotated[
        str,
        typer.Option(
            "--payload",
            metavar="JSON",
            help="A JSON object handed to each item's engine; @file.json reads a file, - stdin.",
        ),
    ] = "{}",
    cron: Annotated[
        str | None,
        typer.Option(
            "--cron",
            metavar="EXPR",
            help="A cron expression: 5 fields (minute hour day month weekday, as Debian's "
            "cron), or 6 with seconds first.",
        ),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            metavar="DURATION",
            help="An interval: 30s, 5m, 1h, 1d (1s to 365d); ticks fall on its multiples since "
            "the Unix epoch (every 1h: on the hour, UTC).",
        ),
    ] = None,
    resource: Annotated[
        list[str] | None,
        typer.Option("--resource", help="A resource each item holds during its steps (repeat)."),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone", metavar="TZ", help="The cron expression's IANA timezone (default UTC)."
        ),
    ] = None,
    missed: Annotated[
        str,
        typer.Option(
            "--missed",
            metavar="POLICY",
            help="Ticks missed while no worker ran: run-once (one item for them all) or skip.",
        ),
    ] = "run-once",
    skip_if_running: Annotated[
        bool,
        typer.Option(
            "--skip-if-running", help="Skip a tick while the schedule's last item is unfinished."
        ),
    ] = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Replace a schedule of that name (its counters and pause stay)."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a schedule that enqueues an item of ENGINE on every tick; print its next run."""
    settings = settings_of(ctx)

    async def main() -> None:
        _name(name)
        body = parse_payload(payload)
        if (cron is None) == (every is None):
            raise CliError("give exactly one of --cron and --every", EXIT_BAD_INPUT)
        from roost.redis.schedule_data import MISSED_POLICIES

        if missed not in MISSED_POLICIES:
            choices = " or ".join(MISSED_POLICIES)
            raise CliError(f"--missed must be {choices}, not {missed!r}", EXIT_BAD_INPUT)
        if timezone is not None and cron is None:
            raise CliError("--timezone applies to --cron only", EXIT_BAD_INPUT)
        registry = load_registry()
        registry.require(engine)  # unknown or broken: refused before touching Redis
        async with open_backend(settings, registry=registry) as backend:
            s = await _schedules(backend).add(
                name,
                engine,
                body,
                cron=cron,
                every=every,
                timezone=timezone,
                resources=resource or [],
                missed="skip" if missed == "skip" else "run-once",
                skip_if_running=skip_if_running,
                replace=replace,
            )
        _show(s, as_json)

    run(main)


@schedule_app.command("list")
@verb()
def list_schedules(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the namespace's schedules: next run, last run and outcome, last item and its state."""
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_backend(settings) as backend:
            found = await _schedules(backend).list()
        if as_json:
            render.echo_json([s.model_dump(mode="json") for s in found])
            return
        if not found:
            typer.echo("no schedules")
            return
        now = time.time()
        render.print_table(HEADERS, [schedule_row(s, now) for s in found])

    run(main)


@schedule_app.command("pause")
@verb()
def pause(ctx: typer.Context, name: NameArg, as_json: JsonFlag = False) -> None:
    """Stop a schedule's ticks (items it made go on); `resume` starts them again."""
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_backend(settings) as backend:
            s = await _schedules(backend).pause(_name(name))
        _show(s, as_json)

    run(main)


@schedule_app.command("resume")
@verb()
def resume(ctx: typer.Context, name: NameArg, as_json: JsonFlag = False) -> None:
    """Start a paused schedule again from its next tick (ticks in the pause are not made up)."""
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_backend(settings) as backend:
            s = await _schedules(backend).resume(_name(name))
        _show(s, as_json)

    run(main)


@schedule_app.command("remove")
@verb()
def remove(ctx: typer.Context, name: NameArg) -> None:
    """Delete a schedule (items it made go on)."""
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_backend(settings) as backend:
            await _schedules(backend).remove(_name(name))
        typer.echo(f"schedule {name} removed")

    run(main)


@schedule_app.command("run-now")
@verb()
def run_now(ctx: typer.Context, name: NameArg) -> None:
    """Enqueue the schedule's item now, outside its ticks; print its work id."""
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_backend(settings) as backend:
            typer.echo(await _schedules(backend).run_now(_name(name)))

    run(main)
