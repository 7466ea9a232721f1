"""How long a worker process may take to stop, and what a second signal does.

A worker stopped by SIGTERM or SIGINT lets running steps finish within ``ROOST_GRACE_PERIOD``,
then releases what is still running (see :meth:`roost.runtime.runner.Runner.drain`). Engine code can
still hold the process: a step blocked in a thread (``asyncio.to_thread(time.sleep, 40)``)
keeps the interpreter from exiting, and a step that swallows its cancellation never ends.
So a process that began to stop on a signal is ended by an :class:`ExitDeadline` at the
latest ``STOP_BOUND`` seconds after the grace period, and :class:`StopSignals` makes a second
signal end it at once, even while a step blocks the event loop or after the loop is gone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

__all__ = [
    "EXIT_AFTER_STOP",
    "SAME_SIGNAL_WINDOW",
    "STOP_BOUND",
    "ExitDeadline",
    "StopSignals",
    "WorkerSignals",
    "exit_now",
]

STOP_BOUND = 10.0
"""After the grace period, how long a stopping worker process may take to exit at most."""

EXIT_AFTER_STOP = 2.0
"""Once the worker has stopped, how long the process may take to exit (threads a step left
running, tasks that ignore cancellation) before it is ended."""

SAME_SIGNAL_WINDOW = 0.5
"""A repeated signal within this many seconds is the same one delivered twice (``uv run``
forwards a SIGINT its child already got from the process group), not a second Ctrl-C."""


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def exit_now(code: int, message: str) -> None:
    """Write ``message`` (a line) to stderr and end the process with ``code`` at once."""
    _flush()
    try:
        os.write(2, f"{message}\n".encode())
    except OSError:
        pass
    os._exit(code)


class ExitDeadline:
    """Ends the process when a deadline passes, unless it has exited by then.

    A daemon thread waits for the deadline, so it fires whatever the event loop and the
    interpreter's shutdown are waiting for.
    """

    def __init__(self, seconds: float, code: int, message: str) -> None:
        """Fire ``seconds`` from now with exit ``code``, writing ``message`` to stderr."""
        self._cond = threading.Condition()
        self._at = time.monotonic() + seconds
        self.code = code
        self.message = message
        threading.Thread(target=self._wait, name="roost-exit-deadline", daemon=True).start()

    def tighten(self, seconds: float, code: int, message: str) -> None:
        """Fire ``seconds`` from now instead, if that is sooner, with this code and message."""
        with self._cond:
            self.code, self.message = code, message
            self._at = min(self._at, time.monotonic() + seconds)
            self._cond.notify_all()

    def _wait(self) -> None:
        with self._cond:
            while (left := self._at - time.monotonic()) > 0:
                self._cond.wait(left)
            code, message = self.code, self.message
        exit_now(code, message)


class StopSignals:
    """Sees SIGINT and SIGTERM in the main thread, below the event loop.

    The event loop's own handler (``loop.add_signal_handler``) starts the graceful stop. This
    notes the first signal as it arrives (even while a step blocks the loop) and from then
    on bounds the process's life with an :class:`ExitDeadline` (grace period +
    :data:`STOP_BOUND`); a second signal (after :data:`SAME_SIGNAL_WINDOW`) ends the process
    at once with status 128 + the signal number, also after the loop's handlers are gone
    (:meth:`keep`).
    """

    def __init__(
        self,
        grace_period: float,
        signums: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
        *,
        second: str = "roost: second signal, exiting now (leases will expire)",
    ) -> None:
        """Watch ``signums`` of a worker with ``grace_period``; ``second`` is the last word."""
        self.grace_period = grace_period
        self.signums = tuple(signums)
        self.second = second
        self.first_at: float | None = None
        self.deadline: ExitDeadline | None = None

    def install(self) -> None:
        """Take the Python-level handlers (call after ``loop.add_signal_handler``).

        asyncio's own wake-up file descriptor stays in place, so the loop still runs its
        handler for the same signal.
        """
        for signum in self.signums:
            signal.signal(signum, self._handle)

    def keep(self) -> None:
        """After the loop's handlers are removed: if a stop began, a second signal still exits.

        Within :data:`SAME_SIGNAL_WINDOW` of the first signal, its echo may still come while
        the interpreter shuts down, where Python-level handlers are reset to the default
        (which would end the process by the signal): the signals are ignored then, and the
        :class:`ExitDeadline` ends a process that lingers.
        """
        if self.first_at is None:
            return
        if time.monotonic() - self.first_at <= SAME_SIGNAL_WINDOW:
            for signum in self.signums:
                signal.signal(signum, signal.SIG_IGN)
        else:
            self.install()

    def stopped(self, failed: bool) -> None:
        """The worker has stopped: the process gets :data:`EXIT_AFTER_STOP` more to exit.

        What can still hold it are threads or tasks its steps left behind; the exit status
        is then 0, or 1 when the worker stopped because it ``failed``.
        """
        if self.deadline is not None:
            self.deadline.tighten(
                EXIT_AFTER_STOP,
                1 if failed else 0,
                "roost: the worker stopped, but threads or tasks its steps left behind hold "
                "the process; exiting",
            )

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
            bound = self.grace_period + STOP_BOUND
            self.deadline = ExitDeadline(
                bound,
                1,
                f"roost: the worker did not stop within {bound:g}s of "
                f"{signal.Signals(signum).name}; exiting (leases of running steps expire)",
            )
        elif now - self.first_at > SAME_SIGNAL_WINDOW:
            exit_now(128 + signum, self.second)


class WorkerSignals:
    """A worker's SIGINT and SIGTERM: the first stops it gracefully, a second exits at once.

    :meth:`install` sets the event loop's handler (it calls ``stop``) and, below it,
    :class:`StopSignals`; :meth:`stopped` takes the loop's handlers down once the worker has
    stopped and bounds what is left of the process's life.
    """

    def __init__(self, grace_period: float, stop: Callable[[], None], *, install: bool) -> None:
        """Watch the signals (only if ``install``) of a worker with ``grace_period``."""
        self.signums = (signal.SIGINT, signal.SIGTERM) if install else ()
        self.stop = stop
        self.signals = StopSignals(grace_period, self.signums) if self.signums else None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Handle the signals on ``loop`` (the first one calls ``stop``)."""
        for signum in self.signums:
            loop.add_signal_handler(signum, self.stop)
        if self.signals is not None:
            self.signals.install()

    def stopped(self, loop: asyncio.AbstractEventLoop, *, failed: bool) -> None:
        """The worker has stopped (``failed``: it gave up): the loop's handlers go."""
        for signum in self.signums:
            loop.remove_signal_handler(signum)
        if self.signals is not None:
            self.signals.keep()
            self.signals.stopped(failed=failed)
