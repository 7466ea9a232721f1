"""Verbs for items that wait for people: signal, approve, reject, pause, resume."""

from __future__ import annotations

import getpass
import socket
from typing import Annotated

import typer

from roost.cli import render
from roost.cli.context import EXIT_BAD_INPUT, CliError, open_backend, run, settings_of
from roost.cli.inspect import JsonFlag
from roost.cli.operate import parse_payload, parse_runtime
from roost.runtime import WorkState
from roost.runtime.limits import BUDGET, MAX_STEPS

__all__ = ["approve", "budget", "pause", "reject", "resume", "sender", "signal"]


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
        async with open_backend(settings) as backend:
            sent = await backend.signal(work_id, name, body, sender=sender())
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
        async with open_backend(settings) as backend:
            if approved:
                sent = await backend.approve(work_id, note=note, sender=sender())
            else:
                sent = await backend.reject(work_id, note=note, sender=sender())
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
        async with open_backend(settings) as backend:
            meta = await backend.pause(work_id)
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
        async with open_backend(settings) as backend:
            meta = await backend.resume(work_id)
        if as_json:
            render.echo_json(meta)
        else:
            typer.echo(f"{work_id}: resumed, {meta.display_state} (step {meta.step or '-'})")

    run(main)


def budget(
    ctx: typer.Context,
    work_id: Annotated[str, typer.Argument(help="An unfinished work item.")],
    add: Annotated[
        float | None,
        typer.Option(
            "--add",
            metavar="AMOUNT",
            min=0.0,
            max=BUDGET.high,
            help="Raise its cost budget by this much.",
        ),
    ] = None,
    add_steps: Annotated[
        int | None,
        typer.Option("--add-steps", min=1, max=int(MAX_STEPS.high), help="Raise its step budget."),
    ] = None,
    add_runtime: Annotated[
        str | None,
        typer.Option("--add-runtime", metavar="DURATION", help="Raise its runtime budget."),
    ] = None,
    and_resume: Annotated[
        bool, typer.Option("--resume", help="Resume it too (after 'budget exceeded').")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show an item's budgets and spending, or raise them (then `roost resume` it).

    Each raise adds to the current limit, or, where the item had none, to what it used.
    """
    settings = settings_of(ctx)

    async def main() -> None:
        runtime = parse_runtime("--add-runtime", add_runtime) or 0.0
        raising = bool(add or add_steps or runtime)
        if and_resume and not raising:
            raise CliError("--resume goes with --add, --add-steps or --add-runtime", EXIT_BAD_INPUT)
        async with open_backend(settings) as backend:
            if raising:
                await backend.raise_budget(
                    work_id, steps=add_steps or 0, cost=add or 0.0, runtime=runtime
                )
            if and_resume:
                await backend.resume(work_id)
            meta = (await backend.status(work_id)).meta
        if as_json:
            render.echo_json(meta.budget)
        else:
            typer.echo(f"{work_id}: {meta.display_state}; {render.budget_text(meta.budget)}")

    run(main)
