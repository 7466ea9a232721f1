"""How ``roost worker`` stops: signals, a grace period, and a stuck-shutdown workaround."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING

import typer

from roost.cli import render

if TYPE_CHECKING:
    from roost.redis import RedisSwarm
    from roost.runtime import EventSink

__all__ = ["SAME_SIGNAL_WINDOW", "GracefulStop", "recancel_stuck_tasks"]

SAME_SIGNAL_WINDOW = 0.5
"""Seconds within which a repeated signal counts as the first one.

``uv run`` forwards a SIGINT to its child about 200 ms after the child got it from its
process group when stdin is not a terminal (``timeout -s INT uv run roost worker``,
``kill -INT -PGID``): one interrupt arrives twice, and must not mean "exit at once".
"""

STUCK_AFTER = 1.0
"""A task still running this long after it was cancelled has swallowed the cancellation."""


def recancel_stuck_tasks(
    seen: dict[asyncio.Task[object], float], spare: set[asyncio.Task[object]]
) -> None:
    """Cancel again the tasks that were cancelled but kept running (swallowed it).

    On Python 3.11 ``asyncio.wait_for`` (and redis-py's internal timeouts) can turn a
    cancellation that coincides with a timeout into ``TimeoutError``; a background loop that
    catches ``TimeoutError`` then runs on, and the worker's shutdown waits for it forever.
    A task counts as stuck once it has been cancelling for :data:`STUCK_AFTER` seconds.

    Args:
        seen: when each cancelling task was first seen (updated in place).
        spare: tasks never to touch (ours).
    """
    now = time.monotonic()
    for task in asyncio.all_tasks():
        if task in spare or task.done() or not task.cancelling():
            continue
        first = seen.setdefault(task, now)
        if now - first > STUCK_AFTER:
            task.cancel()
            seen[task] = now


class GracefulStop:
    """SIGINT/SIGTERM: the first stops the worker gracefully, a second one exits at once.

    Like ``run_worker(install_signal_handlers=True)``, plus a message on the first signal,
    :data:`SAME_SIGNAL_WINDOW` against double delivery, and :func:`recancel_stuck_tasks`.
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

    @contextlib.contextmanager
    def installed(self) -> Generator[None]:
        """Handle SIGINT and SIGTERM in the running loop for the duration of the block."""
        loop = asyncio.get_running_loop()
        signums = (signal.SIGINT, signal.SIGTERM)
        for signum in signums:
            loop.add_signal_handler(signum, self.on_signal, signum)
        try:
            yield
        finally:
            for signum in signums:
                loop.remove_signal_handler(signum)
                if self.first_at is not None:
                    # Stopped on a signal: ignore an echo of it (SAME_SIGNAL_WINDOW) even while
                    # the interpreter shuts down, where Python-level handlers are reset.
                    signal.signal(signum, signal.SIG_IGN)

    async def run(
        self,
        swarm: RedisSwarm,
        engines: Sequence[str] | None,
        *,
        concurrency: int,
        sinks: Sequence[EventSink],
    ) -> None:
        """Run the worker until a signal (already installed with :meth:`installed`)."""
        if self.requested.is_set():
            return
        task = asyncio.ensure_future(
            swarm.run_worker(
                engines, concurrency=concurrency, install_signal_handlers=False, sinks=sinks
            )
        )
        waiter = asyncio.ensure_future(self.requested.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        spare: set[asyncio.Task[object]] = {task, waiter}
        current = asyncio.current_task()
        if current is not None:
            spare.add(current)
        seen: dict[asyncio.Task[object], float] = {}
        while not task.done():
            swarm.stop_worker()  # the worker may not exist yet when the signal came
            recancel_stuck_tasks(seen, spare)
            await asyncio.wait({task}, timeout=0.05)
        await task
