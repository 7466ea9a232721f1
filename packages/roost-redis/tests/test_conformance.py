"""The backend conformance suite (roost.runtime.testing) on a private Redis server.

Once on a namespace of one partition (today's keys), once on a namespace of 16.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.redis.testing import RedisConformanceBackend
from roost.runtime import RoostSettings
from roost.runtime.testing.backend_conformance import BackendConformance, Capability
from roost.runtime.testing.processes import WorkerPool


class TestRedisConformance(BackendConformance):
    capabilities = frozenset(Capability)

    @pytest.fixture
    def backend(
        self, redis_url: str, tmp_path: Path, worker_pool: WorkerPool
    ) -> RedisConformanceBackend:
        return RedisConformanceBackend(redis_url, tmp_path, worker_pool)


class TestPartitionedRedisConformance(BackendConformance):
    capabilities = frozenset(Capability)

    @pytest.fixture
    def backend(
        self, redis_url: str, tmp_path: Path, worker_pool: WorkerPool
    ) -> RedisConformanceBackend:
        backend = RedisConformanceBackend(redis_url, tmp_path, worker_pool)
        backend.settings = RoostSettings.from_env(
            {}, **{**backend.settings.model_dump(), "partitions": 16}
        )
        return backend
