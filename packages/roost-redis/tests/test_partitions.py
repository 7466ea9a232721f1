"""A namespace's number of partitions: chosen once, recorded by its first writer, kept.

See docs/scaling-out.md. A process asking for another number than the namespace records
is refused with one line, before anything is written; one that does not ask uses it.
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


@pytest.mark.parametrize("value", ["3", "0", "6", "2048", "-4"])
def test_the_setting_takes_a_power_of_two(value: str):
    with pytest.raises(SettingsError) as caught:
        RoostSettings.from_env({"ROOST_PARTITIONS": value})
    assert str(caught.value).startswith("ROOST_PARTITIONS: ")
    assert "\n" not in str(caught.value)


def test_unset_means_the_namespaces_own_number():
    assert RoostSettings.from_env({}).partitions is None
    assert RoostSettings.from_env({"ROOST_PARTITIONS": "1"}).partitions == 1
    assert RoostSettings.from_env({"ROOST_PARTITIONS": "64"}).partitions == 64


def _with(settings: RoostSettings, partitions: int | None) -> RoostSettings:
    return RoostSettings.from_env({}, **{**settings.model_dump(), "partitions": partitions})


async def test_the_first_enqueue_records_the_number_and_reads_write_nothing(
    settings: RoostSettings,
):
    async with RedisSwarm(settings, registry=registry()) as reader:
        assert reader.partitions == 1
        await reader.counts()
        await reader.list_work()
        assert await reader.client.hget(reader.keys.conf, PARTS) is None
        await reader.enqueue("hashchain", {"steps": 1})
        assert await reader.client.hget(reader.keys.conf, PARTS) == "1"
    async with RedisSwarm(_with(settings, 1), registry=registry()) as again:
        assert again.partitions == 1
        assert await again.settle_partitions() == 1


async def test_a_worker_records_it_too(
    settings: RoostSettings, running_worker: WorkerFactory, until
):
    async with running_worker([HashChainEngine()], partitions=8) as worker:

        async def recorded() -> bool:
            return await worker.client.hget(worker.keys.conf, PARTS) == "8"

        await until(recorded)
    async with RedisSwarm(settings, registry=registry()) as reader:
        assert reader.partitions == 8  # the namespace's number, not the (unset) setting's


async def test_one_partition_keeps_todays_keys(
    settings: RoostSettings, swarm: RedisSwarm, running_worker: WorkerFactory, until
):
    async with running_worker([HashChainEngine()]):
        work_id = await swarm.enqueue("hashchain", {"steps": 2})

        async def done() -> bool:
            return (await swarm.status(work_id)).meta.state is WorkState.DONE

        await until(done)
    assert len(work_id) == 32
    meta = f"roost:{{{settings.namespace}}}:w:{work_id}"
    assert await swarm.client.hget(meta, "state") == "done"


async def test_another_number_is_refused_before_any_write(settings: RoostSettings):
    async with RedisSwarm(_with(settings, 4), registry=registry()) as first:
        await first.enqueue("hashchain", {"steps": 1})
        before = await first.counts()
    ns = settings.namespace
    for asked in (1, 8):
        with pytest.raises(SettingsError) as other:
            async with RedisSwarm(_with(settings, asked), registry=registry()):
                pass
        assert str(other.value) == (
            f"ROOST_PARTITIONS: namespace {ns!r} has 4 partitions, not {asked} "
            "(fixed when it was created)"
        )
    async with RedisSwarm(settings, registry=registry()) as unset:
        assert unset.partitions == 4
        assert await unset.counts() == before


async def test_two_first_writers_agree_on_one_number(settings: RoostSettings):
    a = RedisSwarm(_with(settings, 2), registry=registry())
    b = RedisSwarm(_with(settings, 16), registry=registry())
    async with a, b:  # both connected before either wrote: both saw no record
        assert (a.partitions, b.partitions) == (2, 16)
        await a.enqueue("hashchain", {"steps": 1})
        with pytest.raises(SettingsError, match="has 2 partitions, not 16"):
            await b.enqueue("hashchain", {"steps": 1})
    async with RedisSwarm(settings, registry=registry()) as reader:
        assert (await reader.counts())["queued"] == 1


async def test_work_from_before_the_record_keeps_one_partition(
    settings: RoostSettings, swarm: RedisSwarm
):
    await swarm.enqueue("hashchain", {"steps": 1})
    await swarm.client.delete(swarm.keys.conf)  # as a version before partitions left it
    async with RedisSwarm(_with(settings, 4), registry=registry()) as later:
        with pytest.raises(SettingsError, match="has 1 partition, not 4"):
            await later.enqueue("hashchain", {"steps": 1})
    assert await swarm.client.hget(swarm.keys.conf, PARTS) == "1"
    assert (await swarm.counts())["queued"] == 1


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
