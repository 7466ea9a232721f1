"""How ``roost worker`` stops: signals and a grace period."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING

import typer

from roost.cli import render
from roost.redis.worker import SAME_SIGNAL_WINDOW

if TYPE_CHECKING:
    from roost.redis import RedisSwarm
    from roost.runtime import EventSink

__all__ = ["SAME_SIGNAL_WINDOW", "GracefulStop"]


class GracefulStop:
    """SIGINT/SIGTERM: the first stops the worker gracefully, a second one exits at once.

    Like ``run_worker(install_signal_handlers=True)`` (including its
    :data:`SAME_SIGNAL_WINDOW` against one interrupt delivered twice), plus a message on
    the first signal.
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
        engines: Sequence[str] | Mapping[str, int] | None,
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
        while not task.done():
            swarm.stop_worker()  # the worker may not exist yet when the signal came
            await asyncio.wait({task}, timeout=0.05)
        await task
