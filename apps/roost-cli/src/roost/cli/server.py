"""``roost server start|status|stop`` (the embedded Redis) and ``roost ui`` (the console)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Annotated, Any

import typer

from roost.cli import render
from roost.cli.common import RoostGroup, verb
from roost.cli.context import (
    EXIT_RUNTIME,
    backend_of,
    fail,
    handle_errors,
    ignore_further_interrupts,
    settings_of,
)
from roost.runtime.backends import ServerCommand

__all__ = ["CONSOLE_INSTALL", "server_app", "ui"]

CONSOLE_INSTALL = "run `uv sync` in the Roost workspace, or `pip install 'roost-cli[console]'`"

server_app = typer.Typer(
    cls=RoostGroup,
    help="Manage the embedded Redis server of this directory (ROOST_HOME).",
    no_args_is_help=True,
)


def _run(ctx: typer.Context, command: ServerCommand, as_json: bool = False) -> None:
    with handle_errors():
        report = backend_of(settings_of(ctx)).manage_server(command)
    if as_json:
        render.echo_json(report.to_dict())
        return
    for line in report.lines():
        typer.echo(line)


@server_app.command("status")
@verb()
def server_status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Say whether the embedded server runs, on which URL, with its data where."""
    _run(ctx, "status", as_json)


@server_app.command("start")
@verb()
def server_start(ctx: typer.Context) -> None:
    """Start the embedded server (roost commands also start it on demand)."""
    _run(ctx, "start")


@server_app.command("stop")
@verb()
def server_stop(ctx: typer.Context) -> None:
    """Stop the embedded server (its data stays on disk for the next start)."""
    _run(ctx, "stop")


def _console_entry() -> Callable[..., Any]:
    """The console's entry point, ``roost.console.serve``, imported only when needed.

    ``serve(settings, *, host, port, token, open_browser)`` blocks until Ctrl-C.
    """
    try:
        console = importlib.import_module("roost.console")
    except ImportError as exc:
        fail(f"the console is not installed ({exc}): {CONSOLE_INSTALL}", EXIT_RUNTIME)
    entry = getattr(console, "serve", None)
    if not callable(entry):
        fail("roost-console is installed but has no serve() entry point", EXIT_RUNTIME)
    return entry


def ui(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free).")
    ] = 8766,
    token: Annotated[
        str | None,
        typer.Option("--token", help="Access token (16+ characters; needed off loopback)."),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the console in the default browser.")
    ] = False,
) -> None:
    """Start the local web console (roost-console) and serve until Ctrl-C."""
    settings = settings_of(ctx)
    serve = _console_entry()
    with handle_errors():
        try:
            serve(settings, host=host, port=port, token=token, open_browser=open_browser)
        except KeyboardInterrupt:
            pass
        ignore_further_interrupts()  # it returns after a Ctrl-C: exit 0 even if it repeats
