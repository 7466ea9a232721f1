"""``roost worker``: run steps, print what happens (:mod:`roost.cli.printer`), stop gracefully."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Annotated, Any

import typer

from roost.cli.common import setup_logging
from roost.cli.context import (
    describe_redis,
    load_registry,
    open_swarm,
    options,
    run,
    settings_of,
)
from roost.cli.logs import DEFAULT_TRACEBACK_LINES as TRACEBACK_LINES
from roost.cli.logs import iso, json_line
from roost.cli.printer import StepPrinter
from roost.cli.stopping import GracefulStop
from roost.runtime.limits import CONCURRENCY

__all__ = ["parse_engines", "worker"]

log = logging.getLogger("roost.cli")


def parse_engines(values: list[str] | None) -> list[str] | None:
    """``--engines a,b --engines c`` -> ``["a", "b", "c"]``; nothing given -> ``None`` (all)."""
    names: list[str] = []
    for value in values or []:
        for name in value.split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    return names or None


def worker(
    ctx: typer.Context,
    engines: Annotated[
        list[str] | None,
        typer.Option(
            "--engines",
            help="Engines to run, comma-separated or repeated (default: every installed one).",
        ),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            min=int(CONCURRENCY.low),
            max=int(CONCURRENCY.high),
            help="How many steps run at once.",
        ),
    ] = 10,
    full_tracebacks: Annotated[
        bool,
        typer.Option(
            "--full-tracebacks",
            help=f"Print whole tracebacks of failed steps (default: the last {TRACEBACK_LINES} "
            "lines).",
        ),
    ] = False,
) -> None:
    """Run a worker until Ctrl-C (or SIGTERM).

    Prints one line per step while that is readable (up to 20 a second, then one summary
    line a second; -v prints every step), and one line per failed attempt with the end of
    its traceback.

    The first Ctrl-C stops taking work and lets running steps finish within
    ROOST_GRACE_PERIOD; a second one exits at once (leases then expire). An engine named
    in --engines that is not installed or failed to load stops the worker at start (exit
    2); without --engines, engines that failed to load are left out with a warning.
    """
    settings = settings_of(ctx)
    wanted = parse_engines(engines)
    opts = options(ctx)
    printer = StepPrinter(
        verbose=opts.verbose,
        fmt=opts.log_format or settings.log_format,
        traceback_lines=None if full_tracebacks else TRACEBACK_LINES,
    )
    # Before connecting: the runtime's warnings are worth seeing; failed steps' records
    # go to the printer, which prints each with its outcome.
    setup_logging(
        ctx,
        logging.INFO,
        traceback_lines=printer.traceback_lines,
        record_filter=printer,
    )

    async def main() -> None:
        stopper = GracefulStop(settings.grace_period)
        with stopper.installed():
            await serve(stopper)

    async def serve(stopper: GracefulStop) -> None:
        registry = load_registry()
        for name in wanted or []:
            registry.require(name)  # unknown or broken: exit 2 before connecting
        if wanted is None:
            registry.probe()
            for broken in registry.broken.values():
                log.warning("%s failed to load and is not run: %s", broken.name, broken.error)
        served = wanted or sorted(registry.engines)
        async with open_swarm(settings, registry=registry) as swarm:
            banner = {
                "pid": os.getpid(),
                "redis": describe_redis(settings, swarm.url),
                "namespace": settings.namespace,
                "queue": settings.queue,
                "engines": served,
                "concurrency": concurrency,
                "grace_period": settings.grace_period,
            }
            say(printer, "worker_started", _banner(banner), banner)
            started = time.monotonic()
            async with printer.running():
                await stopper.run(swarm, wanted, concurrency=concurrency, sinks=[printer])
        elapsed = time.monotonic() - started
        text = f"worker stopped after {elapsed:.1f}s: {printer.steps} steps committed"
        say(printer, "worker_stopped", text, {"seconds": elapsed, "steps": printer.steps})

    run(main)


def _banner(fields: dict[str, Any]) -> str:
    grace = f"{fields['grace_period']:g}s"
    return "\n".join(
        [
            f"roost worker (pid {fields['pid']})",
            f"  redis        {fields['redis']}",
            f"  namespace    {fields['namespace']}   queue {fields['queue']}",
            f"  engines      {', '.join(fields['engines']) or 'none'}",
            f"  concurrency  {fields['concurrency']}   grace period {grace}",
            f"Ctrl-C stops gracefully (running steps get {grace}); a second Ctrl-C exits at once.",
        ]
    )


def say(printer: StepPrinter, event: str, text: str, fields: dict[str, Any]) -> None:
    """Print a line about the worker itself: as it is, or as one JSON object."""
    if printer.json:
        body = {"ts": iso(time.time()), "level": "info", "logger": "roost.worker"}
        text = json_line({**body, "message": text.splitlines()[0], "event": event, **fields})
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
