"""How ``roost worker`` stops: signals and a grace period."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING

from roost.redis.stopping import SAME_SIGNAL_WINDOW, StopSignals

if TYPE_CHECKING:
    from roost.runtime import EventSink
    from roost.runtime.backends import WorkBackend
    from roost.runtime.observe import StepObserver

__all__ = ["SAME_SIGNAL_WINDOW", "GracefulStop"]

log = logging.getLogger("roost.cli")


class GracefulStop:
    """SIGINT/SIGTERM: the first stops the worker gracefully, a second one exits at once.

    Like ``run_worker(install_signal_handlers=True)`` (including its
    :data:`SAME_SIGNAL_WINDOW` against one interrupt delivered twice, and the bound on how
    long the stopping process may take), plus a message on the first signal.
    """

    def __init__(self, grace_period: float) -> None:
        self.grace_period = grace_period
        self.requested = asyncio.Event()
        self.first_at: float | None = None
        self.signals = StopSignals(
            grace_period, second="second interrupt: exiting now (leases of running steps expire)"
        )

    def on_signal(self, signum: int) -> None:
        """Handle one delivery of ``signum`` (a second one is :class:`StopSignals`'s)."""
        if self.first_at is None:
            self.first_at = time.monotonic()
            log.warning(
                "%s: stopping; running steps get %gs to finish (Ctrl-C again to exit at once)",
                signal.Signals(signum).name,
                self.grace_period,
            )
            self.requested.set()

    @contextlib.contextmanager
    def installed(self) -> Generator[None]:
        """Handle SIGINT and SIGTERM in the running loop for the duration of the block."""
        loop = asyncio.get_running_loop()
        signums = (signal.SIGINT, signal.SIGTERM)
        for signum in signums:
            loop.add_signal_handler(signum, self.on_signal, signum)
        self.signals.install()  # a second signal exits even while a step blocks the loop
        try:
            yield
        finally:
            for signum in signums:
                loop.remove_signal_handler(signum)
            self.signals.keep()  # stopped on a signal: a second one still exits at once

    async def run(
        self,
        backend: WorkBackend,
        engines: Sequence[str] | Mapping[str, int] | None,
        *,
        concurrency: int,
        sinks: Sequence[EventSink],
        observers: Sequence[StepObserver] = (),
    ) -> None:
        """Run the worker until a signal (already installed with :meth:`installed`)."""
        if self.requested.is_set():
            return
        task = asyncio.ensure_future(
            backend.run_worker(
                engines,
                concurrency=concurrency,
                install_signal_handlers=False,
                sinks=sinks,
                observers=observers,
            )
        )
        waiter = asyncio.ensure_future(self.requested.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        while not task.done():
            backend.stop_worker()  # the worker may not exist yet when the signal came
            await asyncio.wait({task}, timeout=0.05)
        # Threads or tasks a step left behind must not keep the stopped process alive.
        self.signals.stopped(failed=task.exception() is not None)
        await task
