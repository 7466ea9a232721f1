"""``roost worker``: run steps, print what happens (:mod:`roost.cli.printer`), stop gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import setup_logging
from roost.cli.context import (
    EXIT_BAD_INPUT,
    CliError,
    handle_errors,
    load_registry,
    open_backend,
    options,
    run,
    settings_of,
)
from roost.cli.logs import DEFAULT_TRACEBACK_LINES as TRACEBACK_LINES
from roost.cli.logs import iso, json_line
from roost.runtime.limits import CONCURRENCY

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from roost.cli.printer import StepPrinter
    from roost.cli.stopping import GracefulStop
    from roost.redis.metrics import WorkerMetrics
    from roost.runtime import Registry

__all__ = ["parse_engines", "worker"]

log = logging.getLogger("roost.cli")

FOLLOW_SETTLE = 0.2
"""After the worker stopped, how long the printer may still read the events it stored."""


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
            "--concurrency",
            min=int(CONCURRENCY.low),
            max=int(CONCURRENCY.high),
            help="How many steps of each engine run at once (its slots), unless --engines "
            "gives them.",
        ),
    ] = 10,
    worker_id: Annotated[
        str | None,
        typer.Option(
            "--worker-id",
            help="This worker's identity (default: ROOST_WORKER_ID, else a new one per run). "
            "Restarted with the identity of a worker that died, it takes that worker's "
            "leases back at once; it refuses to start while a live worker has it.",
        ),
    ] = None,
    full_tracebacks: Annotated[
        bool,
        typer.Option(
            "--full-tracebacks",
            help=f"Print whole tracebacks of failed steps (default: the last {TRACEBACK_LINES} "
            "lines).",
        ),
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            help="Serve Prometheus metrics on http://HOST:PORT/metrics (off by default).",
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(
            "--metrics-host", help="Interface the metrics listen on (loopback by default)."
        ),
    ] = "127.0.0.1",
) -> None:
    """Run a worker until Ctrl-C (or SIGTERM).

    Prints one line per step while that is readable (up to 20 a second, then one summary
    line a second; -v prints every step), and one line per failed attempt with the end of
    its traceback.

    The first Ctrl-C stops taking work and lets running steps finish within
    ROOST_GRACE_PERIOD; a second one exits at once (leases then expire). An engine named
    in --engines that is not installed or failed to load stops the worker at start (exit
    2); without --engines, engines that failed to load are left out with a warning.

    With --metrics-port, the worker serves its step counters and the queue's gauges to
    Prometheus (see docs/observability.md); a port it cannot listen on exits 2.
    """
    # Imported here, not by the other commands: Redis, Prometheus and the settings.
    from roost.cli.printer import StepPrinter
    from roost.cli.stopping import GracefulStop
    from roost.redis.metrics import watch_queue
    from roost.redis.plugin import swarm_of
    from roost.runtime.settings import worker_id_problem

    with handle_errors():
        if worker_id is not None and (problem := worker_id_problem(worker_id)):
            raise CliError(f"--worker-id: {problem}", EXIT_BAD_INPUT)
    settings = settings_of(ctx, worker_id=worker_id)
    with handle_errors():
        wanted = parse_engines(engines, concurrency)
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
        served = {**(wanted or dict.fromkeys(sorted(registry.engines), concurrency))}
        metrics, server = _metrics(metrics_port, metrics_host, served)
        try:
            await work(registry, served, metrics, stopper)
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()

    async def work(
        registry: Registry,
        served: dict[str, int],
        metrics: WorkerMetrics | None,
        stopper: GracefulStop,
    ) -> None:
        async with open_backend(settings, registry=registry) as backend:
            banner = {
                "pid": os.getpid(),
                "redis": backend.describe(),
                "namespace": settings.namespace,
                "queue": settings.queue,
                **({"worker_id": settings.worker_id} if settings.worker_id else {}),
                "engines": served,
                "grace_period": settings.grace_period,
            }
            if metrics is not None:
                watch_queue(metrics, swarm_of(backend))
                banner["metrics"] = f"http://{_hostport(metrics_host, metrics_port)}/metrics"
            say(printer, "worker_started", _banner(banner), banner)
            started = time.monotonic()
            async with printer.running():
                follower = asyncio.create_task(
                    printer.follow(backend, lambda: getattr(backend, "worker_id", "") or ""),
                    name="roost-cli-follow",
                )
                try:
                    await stopper.run(
                        backend,
                        wanted,
                        concurrency=concurrency,
                        sinks=[],
                        observers=[metrics] if metrics is not None else [],
                    )
                    await asyncio.sleep(FOLLOW_SETTLE)  # the last events reach the printer
                finally:
                    follower.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await follower
        elapsed = time.monotonic() - started
        text = f"worker stopped after {elapsed:.1f}s: {printer.steps} steps committed"
        say(printer, "worker_stopped", text, {"seconds": elapsed, "steps": printer.steps})

    run(main)


def _metrics(
    port: int | None, host: str, served: dict[str, int]
) -> tuple[WorkerMetrics | None, WSGIServer | None]:
    """The worker's metrics and their server, listening before Redis is touched (or None).

    Raises:
        CliError: the port cannot be listened on (exit 2).
    """
    if port is None:
        return None, None
    from roost.redis.metrics import WorkerMetrics, serve_worker_metrics

    metrics = WorkerMetrics(slots=served)
    try:
        return metrics, serve_worker_metrics(metrics, port, host)
    except OSError as exc:
        raise CliError(
            f"--metrics-port: cannot listen on {_hostport(host, port)}: {exc.strerror or exc}",
            EXIT_BAD_INPUT,
        ) from None


def _hostport(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _banner(fields: dict[str, Any]) -> str:
    grace = f"{fields['grace_period']:g}s"
    metrics = [f"  metrics      {fields['metrics']}"] if "metrics" in fields else []
    return "\n".join(
        [
            f"roost worker (pid {fields['pid']})",
            f"  redis        {fields['redis']}",
            f"  namespace    {fields['namespace']}   queue {fields['queue']}",
            *([f"  worker id    {fields['worker_id']}"] if fields.get("worker_id") else []),
            f"  engines      {_slots(fields['engines']) or 'none'}",
            f"  grace period {grace}",
            *metrics,
            f"Ctrl-C stops gracefully (running steps get {grace}); a second Ctrl-C exits at once.",
        ]
    )


def _slots(engines: dict[str, int]) -> str:
    """``watchlist (4 slots), my-engine (1 slot)``."""
    return ", ".join(f"{e} ({n} slot{'' if n == 1 else 's'})" for e, n in engines.items())


def say(printer: StepPrinter, event: str, text: str, fields: dict[str, Any]) -> None:
    """Print a line about the worker itself: as it is, or as one JSON object."""
    if printer.json:
        body = {"ts": iso(time.time()), "level": "info", "logger": "roost.worker"}
        text = json_line({**body, "message": text.splitlines()[0], "event": event, **fields})
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
