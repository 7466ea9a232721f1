"""The ``roost`` command tree (typer): every verb, wired to the module that implements it.

Settings come from ``ROOST_*`` variables (:meth:`roost.runtime.RoostSettings.from_env`); the
global flags before the command override them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from roost.cli import demo, fleet, inspect, operate, server, worker
from roost.cli.context import GlobalOptions, quiet_logging

__all__ = ["app"]

app = typer.Typer(
    name="roost",
    help=(
        "Roost: a Redis-backed runtime for long-running agent workers. "
        "Settings come from ROOST_* variables; the flags below override them."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    redis_url: Annotated[
        str | None,
        typer.Option("--redis-url", help="Redis URL (overrides ROOST_REDIS_URL; unset: embedded)."),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Namespace (overrides ROOST_NAMESPACE).")
    ] = None,
    queue: Annotated[
        str | None, typer.Option("--queue", help="Queue (overrides ROOST_QUEUE).")
    ] = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="Key prefix (overrides ROOST_REDIS_PREFIX).")
    ] = None,
) -> None:
    """Store the global flags for the command that follows."""
    quiet_logging()
    ctx.obj = GlobalOptions(redis_url=redis_url, namespace=namespace, queue=queue, prefix=prefix)


app.command("engines")(inspect.engines)
app.command("enqueue")(operate.enqueue)
app.command("worker")(worker.worker)
app.command("status")(inspect.status)
app.command("list")(inspect.list_work)
app.command("events")(inspect.events)
app.command("artifact-show")(inspect.artifact_show)
app.command("ui")(server.ui)
app.command("workspace-path")(inspect.workspace_path)
app.command("cancel")(operate.cancel)
app.command("retry")(operate.retry)
app.command("replay")(operate.replay)
app.command("dead")(inspect.dead)
app.command("workers")(fleet.workers)
app.command("demo")(demo.demo)
app.add_typer(server.server_app, name="server")
