"""``roost worker``: run steps, print one line per step, stop gracefully on Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Annotated

import typer

from roost.cli import render
from roost.cli.context import describe_redis, load_registry, open_swarm, run, settings_of
from roost.redis import RedisSwarm
from roost.runtime import RuntimeEvent, UnknownEngine

__all__ = ["GracefulStop", "StepPrinter", "parse_engines", "worker"]

QUIET_EVENTS = frozenset({"started"})

SAME_SIGNAL_WINDOW = 0.5
"""Seconds within which a repeated signal counts as the first one.

``uv run`` forwards a SIGINT to its child about 200 ms after the child got it from its
process group when stdin is not a terminal (``timeout -s INT uv run roost worker``,
``kill -INT -PGID``): one interrupt arrives twice, and must not mean "exit at once".
"""


def parse_engines(values: list[str] | None) -> list[str] | None:
    """``--engines a,b --engines c`` -> ``["a", "b", "c"]``; nothing given -> ``None`` (all)."""
    names: list[str] = []
    for value in values or []:
        for name in value.split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    return names or None


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
            parts.append(f"attempt {data.get('attempt', '?')} failed: {data.get('error', '?')}:")
            parts.append(render.compact(str(data.get("message", "")), 120))
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


class GracefulStop:
    """SIGINT/SIGTERM: the first stops the worker gracefully, a second one exits at once.

    Like ``run_worker(install_signal_handlers=True)``, plus a message on each signal and
    :data:`SAME_SIGNAL_WINDOW` against double delivery.
    """

    def __init__(self, grace_period: float) -> None:
        self.grace_period = grace_period
        self.requested = asyncio.Event()
        self.first_at: float | None = None

    def on_signal(self, signum: int) -> None:
        """Handle one delivery of ``signum``."""
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
            typer.echo(
                f"{render.clock(time.time())}  {signal.Signals(signum).name}: stopping; running "
                f"steps get {self.grace_period:g}s to finish (Ctrl-C again to exit at once)",
                err=True,
            )
            self.requested.set()
        elif now - self.first_at > SAME_SIGNAL_WINDOW:
            sys.stderr.write("second interrupt: exiting now (leases of running steps expire)\n")
            sys.stderr.flush()
            os._exit(128 + signum)

    async def run(
        self,
        swarm: RedisSwarm,
        engines: Sequence[str] | None,
        *,
        concurrency: int,
        printer: StepPrinter,
    ) -> None:
        """Run the worker with these handlers installed until it has stopped."""
        loop = asyncio.get_running_loop()
        signums = (signal.SIGINT, signal.SIGTERM)
        for signum in signums:
            loop.add_signal_handler(signum, self.on_signal, signum)
        try:
            task = asyncio.ensure_future(
                swarm.run_worker(
                    engines, concurrency=concurrency, install_signal_handlers=False, sinks=[printer]
                )
            )
            waiter = asyncio.ensure_future(self.requested.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            while not task.done():  # the worker may not exist yet when the signal came
                swarm.stop_worker()
                await asyncio.wait({task}, timeout=0.05)
            await task
        finally:
            for signum in signums:
                loop.remove_signal_handler(signum)
                if self.first_at is not None:
                    # The worker has stopped; ignore an echo of the first signal (see
                    # SAME_SIGNAL_WINDOW) even while the interpreter shuts down, where a
                    # Python-level handler would already be reset to the default.
                    signal.signal(signum, signal.SIG_IGN)


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s  %(message)s", datefmt="%H:%M:%S"))
    logger = logging.getLogger("roost")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


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
        int, typer.Option("--concurrency", min=1, help="How many steps run at once.")
    ] = 10,
) -> None:
    """Run a worker until Ctrl-C (or SIGTERM).

    The first Ctrl-C stops taking work and lets running steps finish within
    ROOST_GRACE_PERIOD; a second one exits at once (leases then expire).
    """
    settings = settings_of(ctx)
    wanted = parse_engines(engines)

    async def main() -> None:
        registry = load_registry()
        for name in wanted or []:
            if name not in registry.engines:
                known = ", ".join(sorted(registry.engines)) or "none"
                raise UnknownEngine(f"unknown engine {name!r} (installed: {known})")
        served = wanted or sorted(registry.engines)
        printer = StepPrinter()
        async with open_swarm(settings, registry=registry) as swarm:
            _configure_logging()
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
            stopper = GracefulStop(settings.grace_period)
            await stopper.run(swarm, wanted, concurrency=concurrency, printer=printer)
        elapsed = time.monotonic() - started
        typer.echo(f"worker stopped after {elapsed:.1f}s: {printer.steps} steps committed")

    run(main)
