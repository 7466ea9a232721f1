"""Conformance suite for Roost backends: the runtime's invariants, written once as tests.

Every backend (the built-in one, each server layout it supports, a third party's)
proves itself by subclassing :class:`BackendConformance` and giving it a ``backend``
fixture::

    import pytest

    from roost.runtime.testing.backend_conformance import BackendConformance, Capability


    class TestMyBackend(BackendConformance):
        capabilities = frozenset(Capability)  # the required ones, plus the optional ones

        @pytest.fixture
        def backend(self, tmp_path):
            return MyConformanceBackend(tmp_path)  # a ConformanceBackend

The suite speaks only to the operator API (``enqueue``, ``enqueue_many``, ``status``,
``list_work``, ``events``, ``cancel``, ``retry``, ``replay``) and to workers it starts and
stops through the fixture, so it never names a backend. The ``backend`` fixture returns a
:class:`ConformanceBackend` for one test (its own namespace or server) with two methods:

* ``open_store()``: an async context manager yielding a connected operator API;
* ``start_worker(engines, *, concurrency, label, **settings)``: start a worker running the
  suite's engines (:mod:`roost.runtime.testing.chain_engine`, built with ``label``) with
  the given settings (``lease_ttl``, ``max_attempts``, ``retry_delay``,
  ``retry_max_delay``, ``grace_period``, ``history``), and return a :class:`WorkerHandle`
  once it takes work: ``stop()`` (graceful, as SIGTERM), ``kill()`` (abrupt: nothing
  released), ``pause()``/``resume()`` (frozen: nothing renewed), ``wait(timeout)``.

:class:`~roost.runtime.testing.processes.WorkerProcess` is a ready handle: a subprocess running
``python -m roost.runtime.testing.worker --store module:factory``, where the factory returns
the backend's operator API configured from ``ROOST_*`` environment variables, as
``roost worker`` would be. Subprocesses make ``kill`` and ``pause`` faithful (SIGKILL,
SIGSTOP), and let a step kill its own worker.

Capabilities (:class:`Capability`), one module of tests each; all are required except
``snapshot-history``, whose tests are skipped unless listed in
:attr:`ConformanceSuite.capabilities`:

* ``fencing`` (:mod:`.fencing`): a worker whose lease lapsed (event loop stalled, process
  paused) gets its commit refused and changes nothing; a healthy long step keeps its lease;
* ``contiguous-versions`` (:mod:`.versions`): each committed step adds exactly 1, none
  lost or applied twice, also through worker crashes;
* ``resources`` (:mod:`.resources`): claims are all-or-nothing, held only during steps,
  never by two items, released with a dead holder's lease; waiting uses no attempts;
* ``recovery`` (:mod:`.recovery`): an orphaned item resumes elsewhere within the lease TTL
  plus a small bound; a crash counts as an attempt, so a step that kills its worker ends dead;
* ``bounded-retries`` (:mod:`.retries`): exponential backoff, then dead with the last error;
  failed attempts never touch the snapshot; ``PermanentError`` fails at once;
* ``idempotent-enqueue`` (:mod:`.enqueue`): the same key yields the same work id, also
  within a batch and from concurrent clients;
* ``durable-delays`` (:mod:`.delays`): a delayed continuation fires close to its due time
  and survives the death of every worker;
* ``graceful-stop`` (:mod:`.graceful`): running steps finish within the grace period, no new
  step starts, leases are released, a step past the grace period is handed back unspent;
* ``cancellation`` (:mod:`.cancellation`): a running item's commit is refused; queued and
  scheduled items never run;
* ``retry-replay`` (:mod:`.retry_replay`): dead items can be retried, finished ones
  replayed, with contiguous versions;
* ``engine-routing`` (:mod:`.routing`): an item only reaches a worker that runs its engine;
* ``snapshot-history`` (:mod:`.history`, optional): replay from an earlier kept version.

Each capability class (``FencingConformance``, ...) can also be subclassed alone. Timing
knobs (:attr:`ConformanceSuite.expiry_ttl`, ``recovery_bound``, ``delay_bound``,
``stop_bound``, ...) are class attributes a slower backend may raise.

This package imports pytest, which roost-core does not depend on: import it only from test
code. The tests are synchronous and run their body with :func:`asyncio.run` (override
:meth:`ConformanceSuite.run_async` to use another loop), so they need no async plugin.
"""

import pytest

# The capability modules assert with plain ``assert``: let pytest explain failures there.
pytest.register_assert_rewrite(
    *(
        f"roost.runtime.testing.backend_conformance.{name}"
        for name in (
            "base",
            "cancellation",
            "delays",
            "enqueue",
            "fencing",
            "graceful",
            "history",
            "recovery",
            "resources",
            "retries",
            "retry_replay",
            "routing",
            "versions",
        )
    )
)

from roost.runtime.testing.backend_conformance.base import (  # noqa: E402
    CAPABILITY_ATTRIBUTE,
    REQUIRED,
    Capability,
    ConformanceBackend,
    ConformanceSuite,
    Scenario,
    WorkerHandle,
    scenario,
)
from roost.runtime.testing.backend_conformance.suite import BackendConformance  # noqa: E402

__all__ = [
    "CAPABILITY_ATTRIBUTE",
    "REQUIRED",
    "BackendConformance",
    "Capability",
    "ConformanceBackend",
    "ConformanceSuite",
    "Scenario",
    "WorkerHandle",
    "scenario",
]
