"""``roost worker``: run steps, print one line per step, stop gracefully on Ctrl-C."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Annotated

import typer

from roost.cli import render
from roost.cli.context import (
    EXIT_BAD_INPUT,
    CliError,
    configure_logging,
    describe_redis,
    handle_errors,
    load_registry,
    open_swarm,
    run,
    settings_of,
)
from roost.cli.stopping import GracefulStop
from roost.runtime import RuntimeEvent, UnknownEngine

__all__ = ["StepPrinter", "parse_engines", "worker"]

QUIET_EVENTS = frozenset({"started"})


def parse_engines(values: list[str] | None, concurrency: int) -> dict[str, int] | None:
    """``--engines a=4,b --engines c`` -> ``{"a": 4, "b": concurrency, "c": concurrency}``.

    Each engine's slots follow ``=``; a bare name takes ``concurrency``; a name given twice
    keeps the last slots. Nothing given -> ``None`` (every installed engine).

    Raises:
        CliError: a malformed entry (exit 2).
    """
    slots: dict[str, int] = {}
    for value in values or []:
        for entry in value.split(","):
            name, sep, count = (part.strip() for part in entry.partition("="))
            if not name and not sep:
                continue
            if not name or (sep and not (count.isdigit() and int(count) >= 1)):
                raise CliError(
                    f"--engines: {entry.strip()!r} is not ENGINE or ENGINE=SLOTS "
                    "(SLOTS a whole number of at least 1)",
                    EXIT_BAD_INPUT,
                )
            slots[name] = int(count) if sep else concurrency
    return slots or None


class StepPrinter:
    """An event sink that prints one line per step outcome as it happens."""

    def __init__(self) -> None:
        self.steps = 0

    def line(self, event: RuntimeEvent) -> str:
        """The line printed for ``event``."""
        version = "" if event.version is None else f"v{event.version}"
        parts = [render.clock(event.ts), f"{event.type:<10}", event.work_id, version]
        if event.type in ("committed", "done"):
            parts.append(event.step or "")
        if event.type in ("retrying", "dead", "failed"):
            data = event.data
            message = render.compact(str(data.get("message", "")), 120)
            attempt, error = data.get("attempt", "?"), data.get("error", "?")
            parts.append(f"attempt {attempt} failed: {error}: {message}")
            if event.type == "retrying" and "delay" in data:
                parts.append(f"(retry in {float(data['delay']):.1f}s)")
        else:
            parts.append(render.event_details(event))
        return "  ".join(p for p in parts if p)

    async def __call__(self, event: RuntimeEvent) -> None:
        """Print the event's line (step starts are not printed: their outcome is)."""
        if event.type in QUIET_EVENTS:
            return
        if event.type in ("committed", "done"):
            self.steps += 1
        typer.echo(self.line(event))
        sys.stdout.flush()


def worker(
    ctx: typer.Context,
    engines: Annotated[
        list[str] | None,
        typer.Option(
            "--engines",
            help=(
                "Engines to run, comma-separated or repeated, each as ENGINE or ENGINE=SLOTS "
                "(default: every installed one)."
            ),
        ),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency", min=1, help="How many steps of each engine run at once (its slots)."
        ),
    ] = 10,
) -> None:
    """Run a worker until Ctrl-C (or SIGTERM).

    The first Ctrl-C stops taking work and lets running steps finish within
    ROOST_GRACE_PERIOD; a second one exits at once (leases then expire).
    """
    settings = settings_of(ctx)
    with handle_errors():
        wanted = parse_engines(engines, concurrency)

    async def main() -> None:
        configure_logging(logging.INFO)  # before connecting: its warnings are worth seeing
        stopper = GracefulStop(settings.grace_period)
        with stopper.installed():
            await serve(stopper)

    async def serve(stopper: GracefulStop) -> None:
        registry = load_registry()
        for name in wanted or []:
            if name not in registry.engines:
                known = ", ".join(sorted(registry.engines)) or "none"
                raise UnknownEngine(f"unknown engine {name!r} (installed: {known})")
        served = wanted or sorted(registry.engines)
        printer = StepPrinter()
        async with open_swarm(settings, registry=registry) as swarm:
            grace = f"{settings.grace_period:g}s"
            typer.echo(f"roost worker (pid {os.getpid()})")
            typer.echo(f"  redis        {describe_redis(settings, swarm.url)}")
            typer.echo(f"  namespace    {settings.namespace}   queue {settings.queue}")
            typer.echo(f"  engines      {', '.join(served) or 'none'}")
            typer.echo(f"  concurrency  {concurrency}   grace period {grace}")
            typer.echo(
                f"Ctrl-C stops gracefully (running steps get {grace}); "
                "a second Ctrl-C exits at once."
            )
            sys.stdout.flush()
            started = time.monotonic()
            await stopper.run(swarm, wanted, concurrency=concurrency, sinks=[printer])
        elapsed = time.monotonic() - started
        typer.echo(f"worker stopped after {elapsed:.1f}s: {printer.steps} steps committed")

    run(main)
