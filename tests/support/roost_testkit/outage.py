"""A background writer that rides out failovers, for the Sentinel and Cluster fixture tests.

It does what Roost's loops must do on a replicated Redis: every error that means "the
topology is changing" (:data:`OUTAGE_ERRORS`) is counted, backed off and retried; any
other error ends the writer and fails the test.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis import exceptions as rx

OUTAGE_ERRORS = (
    rx.ConnectionError,  # BusyLoadingError (LOADING) and MasterNotFoundError included
    rx.TimeoutError,
    rx.ClusterError,  # ClusterDownError, MasterDownError, "TTL exhausted"
    rx.ReadOnlyError,
    rx.TryAgainError,
    OSError,
    TimeoutError,
)
"""Errors a failover or a reshard produces: retry after a pause, never give up."""


@dataclass
class Writer:
    """Calls ``write(i)`` for i = 0, 1, ... until stopped; ``write`` says if a replica has it.

    Attributes:
        acked: (i, monotonic time) of every write the server acknowledged.
        durable: the i of writes a replica acknowledged too (``WAIT``).
        outages: error class name -> how many times it was retried.
    """

    write: Callable[[int], Awaitable[bool]]
    pause: float = 0.002
    acked: list[tuple[int, float]] = field(default_factory=lambda: [])
    durable: list[int] = field(default_factory=lambda: [])
    outages: Counter[str] = field(default_factory=lambda: Counter[str]())
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> Writer:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 30)

    def since(self, moment: float) -> list[int]:
        """The writes acknowledged after ``moment`` (``time.monotonic()``)."""
        return [i for i, at in self.acked if at > moment]

    async def until_more(
        self,
        count: int,
        after: float | None = None,
        timeout: float = 30,  # noqa: ASYNC109
    ) -> None:
        """Wait until ``count`` writes were acknowledged after ``after`` (default: now)."""
        after = time.monotonic() if after is None else after
        deadline = time.monotonic() + timeout
        while len(self.since(after)) < count:
            if self._task is not None and self._task.done():
                self._task.result()  # the writer died: show why
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(self.since(after))} of {count} writes in {timeout}s; "
                    f"outages: {dict(self.outages)}"
                )
            await asyncio.sleep(0.02)

    async def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            try:
                replicated = await self.write(i)
            except OUTAGE_ERRORS as exc:
                self.outages[type(exc).__name__] += 1
                await asyncio.sleep(0.05)
                continue
            self.acked.append((i, time.monotonic()))
            if replicated:
                self.durable.append(i)
            i += 1
            await asyncio.sleep(self.pause)
