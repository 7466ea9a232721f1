"""Write verbs: enqueue, cancel, retry, replay."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from roost.cli import render
from roost.cli.context import EXIT_BAD_INPUT, CliError, load_registry, open_swarm, run, settings_of
from roost.runtime import BadInput, strictjson
from roost.runtime.limits import ATTEMPTS, DELAY, PRIORITY
from roost.runtime.settings import parse_duration

__all__ = ["cancel", "enqueue", "parse_delay", "parse_payload", "replay", "retry"]


def parse_payload(text: str) -> dict[str, Any]:
    """Parse ``--payload``: a JSON object, ``@path`` (a file) or ``-``/``@-`` (stdin).

    The text must be strict JSON (RFC 8259: no NaN or Infinity) in UTF-8.

    Raises:
        CliError: unreadable, not UTF-8, not JSON, or not an object (exit 2).
    """
    source = "--payload"
    data: str | bytes = text
    if text in ("-", "@-"):
        data = sys.stdin.buffer.read()
        source = "--payload from stdin"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CliError(
                f"--payload: cannot read {path}: {exc.strerror}", EXIT_BAD_INPUT
            ) from None
        source = f"--payload {path}"
    try:
        value = strictjson.loads(data, where=source)
    except BadInput as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise CliError(f"{source} must be a JSON object, not a {kind}", EXIT_BAD_INPUT)
    return cast("dict[str, Any]", value)


def parse_delay(flag: str, text: str | None) -> float:
    """Parse a delay flag (``90``, ``500ms``, ``5m``): 0 to 365 days.

    Raises:
        CliError: malformed or out of range (exit 2).
    """
    if text is None:
        return 0.0
    try:
        return DELAY.check(parse_duration(text), flag)
    except ValueError as exc:
        message = str(exc)
        raise CliError(
            message if message.startswith(flag) else f"{flag}: {message}", EXIT_BAD_INPUT
        ) from None


def enqueue(
    ctx: typer.Context,
    engine: Annotated[str, typer.Option("--engine", help="The engine that runs the item.")],
    payload: Annotated[
        str,
        typer.Option(
            "--payload",
            help="A JSON object handed to the engine; @file.json reads a file, - reads stdin.",
        ),
    ] = "{}",
    resource: Annotated[
        list[str] | None,
        typer.Option(
            "--resource", help="A resource held exclusively during each step (repeatable)."
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="The same key always gives the same work id."),
    ] = None,
    delay: Annotated[
        str | None,
        typer.Option("--delay", help="Start after this long: seconds or 500ms, 30s, 5m..."),
    ] = None,
    priority: Annotated[
        int,
        typer.Option(
            "--priority",
            min=int(PRIORITY.low),
            max=int(PRIORITY.high),
            help="Above 0 goes to the front of the queue.",
        ),
    ] = 0,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            "--max-attempts",
            min=int(ATTEMPTS.low),
            max=int(ATTEMPTS.high),
            help="Attempts per step before the item is dead.",
        ),
    ] = None,
) -> None:
    """Create a work item and print its work id (only the id, on stdout)."""
    settings = settings_of(ctx)

    async def main() -> None:
        body = parse_payload(payload)
        delay_seconds = parse_delay("--delay", delay)
        registry = load_registry()
        registry.require(engine)  # unknown or broken: refused before touching Redis
        async with open_swarm(settings, registry=registry, validate_engines=True) as swarm:
            work_id = await swarm.enqueue(
                engine,
                body,
                resources=resource or [],
                idempotency_key=idempotency_key,
                delay_seconds=delay_seconds,
                priority=priority,
                max_attempts=max_attempts,
            )
        typer.echo(work_id)

    run(main)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the item's meta as JSON.")]


def cancel(
    ctx: typer.Context,
    work_id: Annotated[str, typer.Argument(help="The work item to cancel.")],
    as_json: JsonFlag = False,
) -> None:
    """Cancel an unfinished item; a running step is told to stop and its commit refused."""
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_swarm(settings) as swarm:
            meta = await swarm.cancel(work_id)
        if as_json:
            render.echo_json(meta)
        else:
            typer.echo(f"{meta.work_id}: {meta.state} (step {meta.step or '-'}, v{meta.version})")

    run(main)


def retry(
    ctx: typer.Context,
    work_id: Annotated[str, typer.Argument(help="A failed or dead work item.")],
    as_json: JsonFlag = False,
) -> None:
    """Queue a failed or dead item again, with fresh attempts, from its latest snapshot."""
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_swarm(settings) as swarm:
            meta = await swarm.retry(work_id)
        if as_json:
            render.echo_json(meta)
        else:
            typer.echo(
                f"{meta.work_id}: {meta.state} (from v{meta.version}, step {meta.step or '-'})"
            )

    run(main)


def replay(
    ctx: typer.Context,
    work_id: Annotated[str, typer.Argument(help="A finished item (any item with --as-new).")],
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            min=0,
            help="Snapshot version to start from: 0 = from scratch; default the latest.",
        ),
    ] = None,
    as_new: Annotated[
        bool, typer.Option("--as-new", help="Run a copy as a new item; the original stays.")
    ] = False,
) -> None:
    """Run an item again from a snapshot; print the id of the item that runs."""
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_swarm(settings) as swarm:
            new_id = await swarm.replay(work_id, version=version, as_new=as_new)
        typer.echo(new_id)

    run(main)
