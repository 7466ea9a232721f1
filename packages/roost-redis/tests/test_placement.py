"""Placement of new items in partitions, and the partition every work id names (no server)."""

from __future__ import annotations

import zlib
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.redis.placement import Placer, group_of, hash_partition, partition_of, work_id_in
from roost.runtime.errors import BadInput
from roost.runtime.models import WorkItem

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,40}", fullmatch=True)
sizes = st.sampled_from([1, 2, 4, 16, 128, 1024])


@given(sizes, st.data())
def test_a_generated_id_names_its_partition_and_is_a_valid_work_id(p: int, data: st.DataObject):
    k = data.draw(st.integers(0, p - 1))
    work_id = work_id_in(k, p)
    assert partition_of(work_id, p) == k
    assert WorkItem(work_id=work_id, engine="e").work_id == work_id
    if p == 1:
        assert len(work_id) == 32 and "." not in work_id  # plain ids, as before partitions


@given(ids, sizes)
def test_every_id_has_one_partition_in_range(work_id: str, p: int):
    k = partition_of(work_id, p)
    assert 0 <= k < p
    assert k == partition_of(work_id, p)
    if p == 1:
        assert k == 0


def test_a_marker_out_of_range_or_malformed_is_an_ordinary_id():
    hexid = "0a" * 16
    assert partition_of(f"{hexid}.p3", 4) == 3
    for odd in (f"{hexid}.p4", f"{hexid}.p03", f"{hexid.upper()}.p1", f"{hexid}.p-1"):
        assert partition_of(odd, 4) == zlib.crc32(odd.encode()) & 3


def test_names_of_one_group_share_a_partition():
    assert group_of("tenant-7/db/main") == "tenant-7" and group_of("gpu:0") == "gpu:0"
    parts = {hash_partition(n, 64) for n in ("tenant-7", "tenant-7/db", "tenant-7/job-1")}
    assert len(parts) == 1


def test_items_without_a_constraint_spread_evenly():
    placer = Placer(8)
    counts = Counter(
        placer.place(work_id=None, idempotency_key=None, resources=()) for _ in range(800)
    )
    assert counts == dict.fromkeys(range(8), 100)


def test_the_key_and_the_resources_decide_and_must_agree():
    placer = Placer(16)
    key = "tenant-7/nightly"
    assert placer.place(work_id=None, idempotency_key=key, resources=()) == hash_partition(key, 16)
    assert placer.place(
        work_id=None, idempotency_key=key, resources=["tenant-7/db", "tenant-7/gpu"]
    ) == hash_partition("tenant-7", 16)
    others = [
        g for g in (f"t{i}" for i in range(64)) if hash_partition(g, 16) != hash_partition(key, 16)
    ]
    with pytest.raises(BadInput, match="in different partitions") as caught:
        placer.place(work_id=None, idempotency_key=key, resources=[f"{others[0]}/db"])
    assert "\n" not in str(caught.value)
    chosen = work_id_in(5, 16)
    assert placer.place(work_id=chosen, idempotency_key=None, resources=()) == 5
    with pytest.raises(BadInput, match=f"work id {chosen!r} and resource group"):
        bad = next(g for g in others if hash_partition(g, 16) != 5)
        placer.place(work_id=chosen, idempotency_key=None, resources=[bad])


def test_one_partition_places_everything_in_it():
    placer = Placer(1)
    assert placer.place(work_id="a/b", idempotency_key="k", resources=["x/1", "y/2"]) == 0


def test_a_store_finds_an_items_partition_from_its_id_alone():
    from roost.redis.keys import partition_base
    from roost.redis.store import RedisStore
    from roost.runtime import RoostSettings

    settings = RoostSettings.from_env({}, namespace="ns").model_copy(update={"partitions": 4})
    store = RedisStore(settings)  # not connected: the number as asked
    for k in range(4):
        work_id = work_id_in(k, 4)
        base = "roost:{ns}:" if k == 0 else partition_base("roost", "ns", k)
        assert store.item_keys(work_id).meta(work_id) == f"{base}w:{work_id}"
    one = RedisStore(RoostSettings.from_env({}, namespace="ns"))
    assert one.item_keys(work_id_in(0, 1)) is one.keys
