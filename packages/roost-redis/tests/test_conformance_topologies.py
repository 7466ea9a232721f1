"""A representative part of the backend conformance suite on a Sentinel group and a Cluster.

Idempotent enqueues and the rest ride failovers in the chaos scenarios (tests/chaos); here
the capabilities that depend most on where commands go: fencing, contiguous versions and
recovery. The whole suite runs on a single server (test_conformance.py).

One topology per class (starting one takes seconds); each test gets its own namespace on it.
On the Sentinel group every commit waits for its replica (``ROOST_WAIT_REPLICAS=1``); on the
Cluster also for the append-only file (strict durability): the commit and both waits share
one connection to the slot's primary.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.redis.server.cluster import ClusterGroup
from roost.redis.server.nodes import NodeGroup
from roost.redis.server.pool import configured_binary
from roost.redis.server.sentinel import SentinelGroup
from roost.redis.testing import RedisConformanceBackend
from roost.runtime.settings import RoostSettings
from roost.runtime.testing.backend_conformance import Capability
from roost.runtime.testing.backend_conformance.fencing import FencingConformance
from roost.runtime.testing.backend_conformance.recovery import RecoveryConformance
from roost.runtime.testing.backend_conformance.versions import ContiguousVersionsConformance
from roost.runtime.testing.processes import WorkerPool

pytestmark = pytest.mark.slow


def _started(group: NodeGroup) -> Iterator[NodeGroup]:
    try:
        yield group.start()
    finally:
        group.close()


@pytest.fixture(scope="module")
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeGroup]:
    root = tmp_path_factory.mktemp("sentinel")
    yield from _started(SentinelGroup(root, binary=configured_binary()))


@pytest.fixture(scope="module")
def cluster_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeGroup]:
    root = tmp_path_factory.mktemp("cluster")
    yield from _started(ClusterGroup(root, binary=configured_binary()))


def _backend(url: str, root: Path, pool: WorkerPool, **settings: object) -> RedisConformanceBackend:
    backend = RedisConformanceBackend(url, root, pool)
    backend.settings = RoostSettings.from_env({}, **{**backend.settings.model_dump(), **settings})
    return backend


class TestSentinelConformance(ContiguousVersionsConformance, RecoveryConformance):
    capabilities = frozenset(Capability)

    @pytest.fixture
    def backend(
        self, sentinel_group: SentinelGroup, tmp_path: Path, worker_pool: WorkerPool
    ) -> RedisConformanceBackend:
        return _backend(sentinel_group.url, tmp_path, worker_pool, wait_replicas=1)


class TestClusterConformance(
    FencingConformance, ContiguousVersionsConformance, RecoveryConformance
):
    capabilities = frozenset(Capability)

    @pytest.fixture
    def backend(
        self, cluster_group: ClusterGroup, tmp_path: Path, worker_pool: WorkerPool
    ) -> RedisConformanceBackend:
        return _backend(
            cluster_group.url, tmp_path, worker_pool, wait_replicas=1, strict_durability=True
        )


class TestPartitionedClusterConformance(
    FencingConformance, ContiguousVersionsConformance, RecoveryConformance
):
    """The same on a namespace of 16 partitions spread over the cluster's 3 primaries."""

    capabilities = frozenset(Capability)

    @pytest.fixture
    def backend(
        self, cluster_group: ClusterGroup, tmp_path: Path, worker_pool: WorkerPool
    ) -> RedisConformanceBackend:
        return _backend(
            cluster_group.url,
            tmp_path,
            worker_pool,
            wait_replicas=1,
            strict_durability=True,
            partitions=16,
        )
