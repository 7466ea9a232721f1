"""The ``roost demo`` verb: its options, and which story it runs.

The stories (:mod:`roost.cli.demo`: a killed worker's job resumes;
:mod:`roost.cli.demo_approval`: a job waits for a person) are imported when the verb runs,
so that the other commands do not load them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from roost.cli.context import EXIT_BAD_INPUT, EXIT_RUNTIME, fail, options, run, settings_of

__all__ = ["demo"]


def demo(
    ctx: typer.Context,
    story: Annotated[
        str,
        typer.Argument(
            metavar="[STORY]",
            help="resume (default): a killed worker's job resumes; approval: a job waits "
            "for a person's approval.",
        ),
    ] = "resume",
    checks: Annotated[
        int, typer.Option("--checks", min=2, max=20, help="Checks the watchlist job makes.")
    ] = 4,
    delay: Annotated[
        float, typer.Option("--delay", min=0.1, max=30.0, help="Seconds between two checks.")
    ] = 1.5,
    graceful: Annotated[
        bool,
        typer.Option("--graceful", help="Stop worker A with SIGTERM instead of SIGKILL."),
    ] = False,
) -> None:
    """Run a demo: the watchlist resume story, or (``approval``) a job that waits for a person."""
    from roost.cli.demo import DEMO_NAMESPACE, run_demo
    from roost.cli.demo_approval import run_approval_demo

    opts = options(ctx)
    settings = settings_of(ctx, namespace=opts.namespace or DEMO_NAMESPACE)
    if story not in ("resume", "approval"):
        fail(f"unknown demo {story!r} (resume or approval)", EXIT_BAD_INPUT)
    try:
        if story == "approval":
            run(lambda: run_approval_demo(settings))
        else:
            run(lambda: run_demo(settings, opts, checks, delay, crash=not graceful))
    except KeyboardInterrupt:
        typer.echo("demo interrupted; its workers were stopped", err=True)
        raise typer.Exit(EXIT_RUNTIME) from None
