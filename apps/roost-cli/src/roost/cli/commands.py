"""The ``roost`` command tree (typer): every verb, wired to the module that implements it.

Settings come from ``ROOST_*`` variables (:meth:`roost.runtime.RoostSettings.from_env`); the
global flags before the command override them. Every command also takes ``--log-level``,
``--log-format`` and ``-v`` after its name (:func:`roost.cli.common.verb`).
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from roost.cli import demo_verb, fleet, inspect, operate, schedule, server, waits, worker
from roost.cli.common import (
    LogFormatOption,
    LogLevelOption,
    RoostGroup,
    VerboseOption,
    remember,
    setup_logging,
    verb,
)
from roost.cli.context import GlobalOptions

__all__ = ["app"]

app = typer.Typer(
    name="roost",
    cls=RoostGroup,
    help=(
        "Roost: a Redis-backed runtime for long-running agent workers. "
        "Settings come from ROOST_* variables; the options below override them."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if not value:
        return
    try:
        found = version("roost-cli")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        found = "unknown"
    typer.echo(f"roost {found}")
    raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            metavar="URL",
            help="Redis URL (overrides ROOST_REDIS_URL; unset: embedded).",
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", metavar="NAME", help="Namespace (overrides ROOST_NAMESPACE)."),
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option("--queue", metavar="NAME", help="Queue (overrides ROOST_QUEUE)."),
    ] = None,
    prefix: Annotated[
        str | None,
        typer.Option(
            "--prefix", metavar="PREFIX", help="Key prefix (overrides ROOST_REDIS_PREFIX)."
        ),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(
            "--partitions",
            metavar="N",
            help="Partitions of a new namespace (overrides ROOST_PARTITIONS; fixed once set).",
        ),
    ] = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
    verbose: VerboseOption = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version of roost and exit.",
        ),
    ] = False,
) -> None:
    """Store the global flags for the command that follows."""
    ctx.obj = GlobalOptions(
        redis_url=redis_url, namespace=namespace, queue=queue, prefix=prefix, partitions=partitions
    )
    remember(ctx, log_level, log_format, verbose)
    setup_logging(ctx)  # commands configure it again with their own default level


def _add(name: str, command: object, default_level: int = logging.ERROR) -> None:
    app.command(name)(verb(default_level)(command))  # type: ignore[arg-type]


_add("engines", inspect.engines)
_add("enqueue", operate.enqueue)
_add("worker", worker.worker, logging.INFO)
_add("status", inspect.status)
_add("list", inspect.list_work)
_add("events", inspect.events)
_add("artifact-show", inspect.artifact_show)
_add("ui", server.ui)
_add("workspace-path", inspect.workspace_path)
_add("cancel", operate.cancel)
_add("retry", operate.retry)
_add("replay", operate.replay)
_add("signal", waits.signal)
_add("approve", waits.approve)
_add("reject", waits.reject)
_add("pause", waits.pause)
_add("resume", waits.resume)
_add("budget", waits.budget)
_add("dead", inspect.dead)
_add("workers", fleet.workers)
_add("demo", demo_verb.demo)
app.add_typer(server.server_app, name="server")
app.add_typer(schedule.schedule_app, name="schedule")
