"""What every capability module builds on: capabilities, the backend fixture, scenarios."""

from __future__ import annotations

import asyncio
import inspect
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, cast

import pytest

from roost.runtime.models import WorkState, WorkStatus
from roost.runtime.stores import WorkStore
from roost.runtime.testing.chain_engine import CHAIN, Journal, chain_payload
from roost.runtime.testing.processes import WorkerPool

__all__ = [
    "CAPABILITY_ATTRIBUTE",
    "REQUIRED",
    "Capability",
    "ConformanceBackend",
    "ConformanceSuite",
    "Scenario",
    "WorkerHandle",
    "scenario",
]

T = TypeVar("T")


class Capability(StrEnum):
    """What a backend supports; each has one module of tests.

    Every capability is required of a Roost backend except those :attr:`required` says are
    optional (their tests are skipped unless the backend lists them in
    :attr:`ConformanceSuite.capabilities`).
    """

    FENCING = "fencing"
    """A worker whose lease lapsed (stalled loop, paused process) changes nothing."""
    CONTIGUOUS_VERSIONS = "contiguous-versions"
    """Each committed step adds exactly 1 to the version, through worker crashes too."""
    RESOURCES = "resources"
    """Claims are all-or-nothing, held only during steps; waiting uses no attempts."""
    RECOVERY = "recovery"
    """An orphaned item resumes elsewhere within the lease TTL; a crash is an attempt."""
    BOUNDED_RETRIES = "bounded-retries"
    """Backoff, then dead with the last error; a PermanentError fails at once."""
    IDEMPOTENT_ENQUEUE = "idempotent-enqueue"
    """The same idempotency key yields the same work id, from concurrent clients too."""
    DURABLE_DELAYS = "durable-delays"
    """A delayed continuation survives a worker restart and fires close to its due time."""
    GRACEFUL_STOP = "graceful-stop"
    """Running steps finish within the grace period, none starts, leases are released."""
    CANCELLATION = "cancellation"
    """A running item's commit is refused; a queued or scheduled one never runs."""
    RETRY_REPLAY = "retry-replay"
    """Dead items can be retried and finished items replayed, versions staying contiguous."""
    ENGINE_ROUTING = "engine-routing"
    """An item is only delivered to a worker that runs its engine."""
    SNAPSHOT_HISTORY = "snapshot-history"
    """Earlier snapshot versions are kept (``history`` setting) and can be replayed from."""

    @property
    def required(self) -> bool:
        """Whether every backend must support it."""
        return self is not Capability.SNAPSHOT_HISTORY


REQUIRED = frozenset(c for c in Capability if c.required)
"""The capabilities every backend must pass."""

CAPABILITY_ATTRIBUTE = "roost_capability"
"""The attribute naming the :class:`Capability` of each test :func:`scenario` makes."""


class WorkerHandle(Protocol):
    """A running worker, as :meth:`ConformanceBackend.start_worker` returns it.

    :class:`roost.runtime.testing.processes.WorkerProcess` is one (a subprocess).
    """

    label: str
    """The worker's name: its engines write it in the journal and the snapshot trail."""

    @property
    def alive(self) -> bool:
        """True until the worker has exited."""
        ...

    async def stop(self, timeout: float = 60.0) -> float:  # noqa: ASYNC109
        """Stop gracefully (as SIGTERM), wait for the exit and return how long it took."""
        ...

    async def kill(self) -> None:
        """Stop abruptly: nothing is released (leases and claims must expire)."""
        ...

    async def pause(self) -> None:
        """Freeze the worker (SIGSTOP, or a stalled event loop): it renews nothing."""
        ...

    async def resume(self) -> None:
        """Let a paused worker run on."""
        ...

    async def wait(self, timeout: float) -> int:  # noqa: ASYNC109
        """Wait for the worker to exit by itself; return its exit status."""
        ...


class ConformanceBackend(ABC):
    """The backend under test, as the subclass's ``backend`` fixture returns it.

    One instance serves one test: it works in its own namespace (or server) and every store
    and worker it makes shares that namespace.
    """

    @abstractmethod
    def open_store(self) -> AbstractAsyncContextManager[WorkStore]:
        """Return an async context manager yielding a connected operator API."""

    @abstractmethod
    async def start_worker(
        self, engines: Sequence[str], *, concurrency: int, label: str, **settings: Any
    ) -> WorkerHandle:
        """Start a worker that runs the suite's engines; return once it takes work.

        Args:
            engines: engine ids (:data:`~roost.runtime.testing.chain_engine.CHAIN`,
                :data:`~roost.runtime.testing.chain_engine.CHAIN_OTHER`); build them with
                :func:`~roost.runtime.testing.chain_engine.build_engines` and ``label``.
            concurrency: how many steps it runs at once.
            label: the worker's name, passed to the engines.
            **settings: runtime settings by their :class:`~roost.runtime.RoostSettings`
                names: ``lease_ttl``, ``max_attempts``, ``retry_delay``,
                ``retry_max_delay``, ``grace_period``, ``history``.
        """


class ConformanceSuite:
    """Base of every capability class: timing knobs and the scenario runner.

    Subclasses provide a pytest fixture named ``backend`` returning a
    :class:`ConformanceBackend`, and may list :attr:`capabilities`.
    """

    capabilities: ClassVar[frozenset[Capability]] = REQUIRED
    """What the backend supports: optional capabilities not listed here are skipped."""

    lease_ttl: ClassVar[float] = 3.0
    """The lease TTL of workers in tests where leases are not meant to expire."""

    expiry_ttl: ClassVar[float] = 1.0
    """The lease TTL in tests whose subject is an expiring lease (fencing, recovery)."""

    recovery_bound: ClassVar[float] = 2.0
    """An orphaned item starts again within its lease TTL plus this many seconds."""

    delay_bound: ClassVar[float] = 1.0
    """A due continuation starts within this many seconds after its due time."""

    stop_bound: ClassVar[float] = 3.0
    """A stopping worker exits within its grace period plus this many seconds."""

    wait_timeout: ClassVar[float] = 30.0
    """How long a scenario waits for anything before it fails."""

    @pytest.fixture(scope="class")
    @classmethod
    def worker_pool(cls) -> Iterator[WorkerPool]:
        """Warm worker processes shared by the class's tests (for ``WorkerProcess``)."""
        pool = WorkerPool(spares=2)  # scenarios often start two workers in a row
        try:
            yield pool
        finally:
            pool.close()

    def run_async(self, main: Callable[[], Awaitable[None]]) -> None:
        """Run one test's async body to completion (default: :func:`asyncio.run`)."""

        async def wrapper() -> None:
            await main()

        asyncio.run(wrapper())

    def run_scenario(
        self,
        capability: Capability,
        backend: ConformanceBackend,
        root: Path,
        body: Callable[[Scenario], Awaitable[None]],
    ) -> None:
        """Open a store, run ``body`` with a :class:`Scenario`, then kill leftover workers."""
        if capability not in self.capabilities:
            if capability.required:
                pytest.fail(f"{type(self).__name__} must support required {capability}")
            pytest.skip(f"{type(self).__name__} does not declare {capability}")

        async def main() -> None:
            async with backend.open_store() as store:
                sc = Scenario(self, backend, store, root)
                try:
                    await body(sc)
                finally:
                    await sc.close()

        self.run_async(main)


_Body = Callable[[Any, "Scenario"], Awaitable[None]]


def scenario(capability: Capability) -> Callable[[_Body], Callable[..., None]]:
    """Turn ``async def test_x(self, sc)`` into a pytest test of ``capability``.

    The test takes the ``backend`` fixture and ``tmp_path``, and needs no async plugin.
    """

    def decorate(body: _Body) -> Callable[..., None]:
        def test(self: ConformanceSuite, backend: ConformanceBackend, tmp_path: Path) -> None:
            self.run_scenario(capability, backend, tmp_path, lambda sc: body(self, sc))

        test.__name__ = body.__name__
        test.__qualname__ = body.__qualname__
        test.__doc__ = body.__doc__
        test.__module__ = body.__module__
        setattr(test, CAPABILITY_ATTRIBUTE, capability)  # noqa: B010 (a function attribute)
        return test

    return decorate


class Scenario:
    """One test's world: the store, the journal, gates and the workers it started."""

    def __init__(
        self, suite: ConformanceSuite, backend: ConformanceBackend, store: WorkStore, root: Path
    ) -> None:
        """Use ``root`` (the test's ``tmp_path``) for the journal and the gate files."""
        self.suite = suite
        self.backend = backend
        self.store = store
        self.root = root
        self.journal = Journal(root / "journal.jsonl")
        self.gates = root / "gates"
        self.gates.mkdir(parents=True, exist_ok=True)
        self.workers: list[WorkerHandle] = []
        self._started = 0

    # -- work ---------------------------------------------------------------------------

    def payload(
        self,
        steps: int = 1,
        *,
        delay: float = 0.0,
        plan: Mapping[int, Sequence[str]] | None = None,
    ) -> dict[str, Any]:
        """A payload for the suite's engine (see :mod:`~roost.runtime.testing.chain_engine`)."""
        return chain_payload(self.journal.path, self.gates, steps=steps, delay=delay, plan=plan)

    async def enqueue(
        self,
        steps: int = 1,
        *,
        delay: float = 0.0,
        plan: Mapping[int, Sequence[str]] | None = None,
        engine: str = CHAIN,
        resources: Sequence[str] = (),
        **options: Any,
    ) -> str:
        """Enqueue one item of the suite's engine; ``options`` go to ``store.enqueue``."""
        payload = self.payload(steps, delay=delay, plan=plan)
        return await self.store.enqueue(engine, payload, resources=resources, **options)

    def open_gate(self, name: str) -> None:
        """Open the gate ``name``: steps waiting on it go on (``gate:NAME`` actions)."""
        (self.gates / name).touch()

    # -- workers ------------------------------------------------------------------------

    def worker_settings(self, **overrides: Any) -> dict[str, Any]:
        """The settings every worker gets, with ``overrides``."""
        return {
            "lease_ttl": self.suite.lease_ttl,
            "max_attempts": 3,
            "retry_delay": 0.05,
            "retry_max_delay": 0.2,
            "grace_period": 5.0,
            **overrides,
        }

    async def start_worker(
        self, engines: Sequence[str] = (CHAIN,), *, concurrency: int = 4, **settings: Any
    ) -> WorkerHandle:
        """Start a worker labelled ``w0``, ``w1``, ... (see :meth:`worker_settings`)."""
        label = f"w{self._started}"
        self._started += 1  # before the await: workers started together get distinct labels
        worker = await self.backend.start_worker(
            list(engines),
            concurrency=concurrency,
            label=label,
            **self.worker_settings(**settings),
        )
        self.workers.append(worker)
        return worker

    async def close(self) -> None:
        """Kill (and reap) every worker this scenario started."""
        for worker in self.workers:
            await worker.kill()

    # -- observing ----------------------------------------------------------------------

    async def until(
        self,
        predicate: Callable[[], T | None | Awaitable[T | None]],
        what: str,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> T:
        """Poll ``predicate`` until it returns something truthy; return that.

        Raises:
            AssertionError: naming ``what``, when ``timeout`` (default
                :attr:`ConformanceSuite.wait_timeout`) passes first.
        """
        limit = self.suite.wait_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return cast("T", result)
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {limit:.0f}s: {what}")
            await asyncio.sleep(0.02)

    async def state(self, work_id: str) -> WorkState:
        """The item's state."""
        return (await self.store.status(work_id)).meta.state

    async def until_state(
        self,
        work_id: str,
        *states: WorkState,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> WorkStatus:
        """Wait until the item is in one of ``states``; return its status."""

        async def reached() -> WorkStatus | None:
            status = await self.store.status(work_id)
            return status if status.meta.state in states else None

        wanted = " or ".join(states)
        return await self.until(reached, f"{work_id} is {wanted}", timeout)

    async def until_done_at(self, work_id: str, version: int) -> WorkStatus:
        """Wait until the item is done at ``version`` (after a replay, say); return it."""

        async def done() -> WorkStatus | None:
            status = await self.store.status(work_id)
            meta = status.meta
            return status if meta.state == WorkState.DONE and meta.version == version else None

        return await self.until(done, f"{work_id} is done at version {version}")

    async def committed_versions(
        self, work_id: str, types: Sequence[str] = ("committed", "done")
    ) -> list[int]:
        """The versions that the item's events of ``types`` report, in stream order."""
        events = await self.store.events(work_id=work_id, limit=1000)
        return [e.version for e in events if e.type in types and e.version is not None]

    async def assert_contiguous(self, work_id: str, steps: int) -> WorkStatus:
        """Assert the item is done after exactly ``steps`` steps, each committed once.

        The init snapshot is version 1 and each step adds 1; the snapshot's trail names the
        version each committed step started from; the events commit each version once.
        """
        status = await self.store.status(work_id)
        assert status.meta.state == WorkState.DONE, status.meta
        assert status.snapshot is not None
        assert status.snapshot.version == status.meta.version == steps + 1, status.meta
        trail = status.snapshot.data["trail"]
        assert [entry["v"] for entry in trail] == list(range(1, steps + 1)), trail
        assert await self.committed_versions(work_id) == list(range(1, steps + 2))
        return status
