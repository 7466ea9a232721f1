"""A namespace's number of partitions: chosen once, recorded by its first writer, kept.

See docs/scaling-out.md. This version runs namespaces of one partition; a namespace that
records more (written by a version that runs them), or a setting that asks for more, is
refused with one line, before anything is written.
"""

from __future__ import annotations

import pytest

from roost.redis import RedisSwarm
from roost.redis.store import PARTS
from roost.runtime import RoostSettings
from roost.runtime.errors import SettingsError
from roost.runtime.models import WorkState
from roost_testkit.engines import HashChainEngine

from .conftest import WorkerFactory, registry  # noqa: TID252


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3", "ROOST_PARTITIONS: must be a power of two from 1 to 1024, not 3"),
        ("0", "ROOST_PARTITIONS: must be a power of two from 1 to 1024, not 0"),
        ("2048", "ROOST_PARTITIONS: must be a power of two from 1 to 1024, not 2048"),
        ("4", "ROOST_PARTITIONS: 4 partitions: more than 1 is not supported yet"),
        ("many", "ROOST_PARTITIONS"),
    ],
)
def test_the_setting_takes_one_partition_for_now(value: str, message: str):
    with pytest.raises(SettingsError) as caught:
        RoostSettings.from_env({"ROOST_PARTITIONS": value})
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_unset_means_the_namespaces_own_number():
    assert RoostSettings.from_env({}).partitions is None
    assert RoostSettings.from_env({"ROOST_PARTITIONS": "1"}).partitions == 1


async def test_the_first_enqueue_records_one_partition_and_reads_write_nothing(
    settings: RoostSettings,
):
    async with RedisSwarm(settings, registry=registry()) as reader:
        assert reader.partitions == 1
        await reader.counts()
        assert await reader.client.hget(reader.keys.conf, PARTS) is None
        await reader.enqueue("hashchain", {"steps": 1})
        assert await reader.client.hget(reader.keys.conf, PARTS) == "1"
    explicit = settings.model_copy(update={"partitions": 1})
    async with RedisSwarm(explicit, registry=registry()) as again:
        assert again.partitions == 1
        assert await again.settle_partitions() == 1


async def test_a_worker_records_it_too_and_runs_work_as_before(
    settings: RoostSettings, swarm: RedisSwarm, running_worker: WorkerFactory, until
):
    async with running_worker([HashChainEngine()]):
        work_id = await swarm.enqueue("hashchain", {"steps": 2})

        async def done() -> bool:
            return (await swarm.status(work_id)).meta.state is WorkState.DONE

        await until(done)
    assert await swarm.client.hget(swarm.keys.conf, PARTS) == "1"
    assert swarm.keys.meta(work_id) == f"roost:{{{settings.namespace}}}:w:{work_id}"


async def test_a_namespace_recording_more_partitions_is_refused_before_any_write(
    settings: RoostSettings, swarm: RedisSwarm
):
    await swarm.client.execute_command("HSET", swarm.keys.conf, PARTS, "4")
    ns = settings.namespace
    with pytest.raises(SettingsError) as unset:
        async with RedisSwarm(settings, registry=registry()):
            pass
    assert str(unset.value) == (
        f"ROOST_PARTITIONS: namespace {ns!r} has 4 partitions: more than 1 is not supported yet"
    )
    one = settings.model_copy(update={"partitions": 1})
    with pytest.raises(SettingsError) as other:
        async with RedisSwarm(one, registry=registry()):
            pass
    assert str(other.value) == (
        f"ROOST_PARTITIONS: namespace {ns!r} has 4 partitions, not 1 (fixed when it was created)"
    )
    # The swarm connected before the record changed finds out at its next first write.
    with pytest.raises(SettingsError, match="has 4 partitions"):
        await swarm.enqueue("hashchain", {"steps": 1})
    assert await swarm.counts() == dict.fromkeys(await swarm.counts(), 0)


async def test_a_record_that_is_not_a_number_of_partitions_is_refused(
    settings: RoostSettings, swarm: RedisSwarm
):
    await swarm.client.execute_command("HSET", swarm.keys.conf, PARTS, "three")
    with pytest.raises(SettingsError) as caught:
        async with RedisSwarm(settings, registry=registry()):
            pass
    assert str(caught.value) == (
        f"ROOST_PARTITIONS: namespace {settings.namespace!r} records 'three' partitions"
    )


async def test_more_partitions_are_never_recorded(settings: RoostSettings):
    # Settings built around the check (as a later version's would be) still record nothing.
    four = settings.model_copy(update={"partitions": 4})
    async with RedisSwarm(four, registry=registry()) as swarm:
        with pytest.raises(SettingsError, match="4 partitions: more than 1 is not supported yet"):
            await swarm.enqueue("hashchain", {"steps": 1})
        assert await swarm.client.hget(swarm.keys.conf, PARTS) is None
