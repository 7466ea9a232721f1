"""Every capability's tests in one class, for backends that subclass the whole suite."""

from __future__ import annotations

from roost.runtime.testing.backend_conformance.cancellation import CancellationConformance
from roost.runtime.testing.backend_conformance.delays import DelayConformance
from roost.runtime.testing.backend_conformance.enqueue import IdempotentEnqueueConformance
from roost.runtime.testing.backend_conformance.fencing import FencingConformance
from roost.runtime.testing.backend_conformance.graceful import GracefulStopConformance
from roost.runtime.testing.backend_conformance.history import SnapshotHistoryConformance
from roost.runtime.testing.backend_conformance.recovery import RecoveryConformance
from roost.runtime.testing.backend_conformance.resources import ResourceConformance
from roost.runtime.testing.backend_conformance.retries import RetryConformance
from roost.runtime.testing.backend_conformance.retry_replay import RetryReplayConformance
from roost.runtime.testing.backend_conformance.routing import EngineRoutingConformance
from roost.runtime.testing.backend_conformance.versions import ContiguousVersionsConformance

__all__ = ["BackendConformance"]


class BackendConformance(
    FencingConformance,
    ContiguousVersionsConformance,
    ResourceConformance,
    RecoveryConformance,
    RetryConformance,
    IdempotentEnqueueConformance,
    DelayConformance,
    GracefulStopConformance,
    CancellationConformance,
    RetryReplayConformance,
    EngineRoutingConformance,
    SnapshotHistoryConformance,
):
    """The whole backend conformance suite (see :mod:`roost.runtime.testing.backend_conformance`).

    Subclass it under a name starting with ``Test`` and give it a ``backend`` fixture.
    """
