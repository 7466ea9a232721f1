"""Verbs for items that wait for people: signal, approve, reject, pause, resume."""

from __future__ import annotations

import getpass
import socket
from typing import Annotated

import typer

from roost.cli import render
from roost.cli.context import open_swarm, run, settings_of
from roost.cli.inspect import JsonFlag
from roost.cli.operate import parse_payload
from roost.runtime import WorkState

__all__ = ["approve", "pause", "reject", "resume", "sender", "signal"]


def sender() -> str:
    """Who sends from this CLI: ``cli:user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = "?"
    return f"cli:{user}@{socket.gethostname()}"[:200]


def _said(work_id: str, what: str, woke: bool) -> str:
    return f"{work_id}: {what} ({'woke it' if woke else 'kept until a step receives it'})"


def signal(
    ctx: typer.Context,
    work_id: Annotated[str, typer.Argument(help="The work item to signal.")],
    name: Annotated[str, typer.Argument(help="The signal's name (what the engine waits for).")],
    payload: Annotated[
        str,
        typer.Option(
            "--payload",
            metavar="JSON",
            help="A JSON object for the step; @file.json reads a file, - reads stdin.",
        ),
    ] = "{}",
    as_json: JsonFlag = False,
) -> None:
    """Send a signal to an unfinished item; it is kept until a step receives it."""
    settings = settings_of(ctx)

    async def main() -> None:
        body = parse_payload(payload)
        async with open_swarm(settings) as swarm:
            sent = await swarm.signal(work_id, name, body, sender=sender())
        if as_json:
            render.echo_json(sent)
        else:
            typer.echo(_said(work_id, f"signal {name} sent", sent.woke))

    run(main)


NoteOption = Annotated[
    str | None, typer.Option("--note", metavar="TEXT", help="A note the next step reads.")
]


def _decide(
    ctx: typer.Context, work_id: str, note: str | None, approved: bool, as_json: bool
) -> None:
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_swarm(settings) as swarm:
            if approved:
                sent = await swarm.approve(work_id, note=note, sender=sender())
            else:
                sent = await swarm.reject(work_id, note=note, sender=sender())
        if as_json:
            render.echo_json(sent)
        else:
            typer.echo(_said(work_id, "approved" if approved else "rejected", sent.woke))

    run(main)


def approve(
    ctx: typer.Context,
    work_id: Annotated[str, typer.Argument(help="The item that needs approval.")],
    note: NoteOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Approve what an item asks; its next step sees the decision and the note."""
    _decide(ctx, work_id, note, True, as_json)


def reject(
    ctx: typer.Context,
    work_id: Annotated[str, typer.Argument(help="The item that needs approval.")],
    note: NoteOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Reject what an item asks; its next step sees the decision and the note."""
    _decide(ctx, work_id, note, False, as_json)


def pause(
    ctx: typer.Context,
    work_id: Annotated[str, typer.Argument(help="The work item to pause.")],
    as_json: JsonFlag = False,
) -> None:
    """Pause an unfinished item: no new step runs until `roost resume`; it keeps its place.

    A running step may finish and commit; its continuation then waits.
    """
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_swarm(settings) as swarm:
            meta = await swarm.pause(work_id)
        if as_json:
            render.echo_json(meta)
        elif meta.state == WorkState.RUNNING:
            typer.echo(f"{work_id}: pausing (its running step may finish; nothing follows it)")
        else:
            typer.echo(f"{work_id}: paused (step {meta.step or '-'}, v{meta.version})")

    run(main)


def resume(
    ctx: typer.Context,
    work_id: Annotated[str, typer.Argument(help="A paused work item.")],
    as_json: JsonFlag = False,
) -> None:
    """Resume a paused item where it was (queued, scheduled, retrying or awaiting)."""
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_swarm(settings) as swarm:
            meta = await swarm.resume(work_id)
        if as_json:
            render.echo_json(meta)
        else:
            typer.echo(f"{work_id}: resumed, {meta.display_state} (step {meta.step or '-'})")

    run(main)
