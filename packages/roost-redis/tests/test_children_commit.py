"""The spawning commit at the script level: a repeat is DUP, a stale one spawns nothing."""

from __future__ import annotations

from typing import Any

from roost.redis import RedisSwarm
from roost.redis.children import spawn_block
from roost.redis.keys import Keys, new_token
from roost.runtime import ChildOf, Snapshot, WorkItem, WorkState


async def lease(swarm: RedisSwarm, work_id: str, keys: Keys) -> tuple[str, int]:
    """Take ``work_id``'s delivery and lease by hand, as a worker would."""
    (job,) = await swarm.run_script("dequeue", [], [1], keys=keys)
    parsed = keys.parse_job(job)
    assert parsed is not None
    token = new_token()
    reply = await swarm.run_script(
        "acquire",
        [keys.meta(work_id), keys.item(work_id), keys.snap(work_id), job],
        [work_id, parsed[1], token, 5, 0, "", 50, 1000, ""],
        keys=keys,
    )
    assert reply[0] == "OK", reply
    return token, int(reply[1])


def commit_call(
    keys: Keys, work_id: str, token: str, epoch: int, children: list[WorkItem]
) -> tuple[list[str], list[Any]]:
    dispatch = new_token()
    suffix = Keys.job_suffix(work_id, dispatch)
    snap = Snapshot(work_id=work_id, engine="fanout", step="gather", version=1)
    # the item's keys (no resources) and its signal stream; the arguments, then no wait for
    # signals and no budget ('' ''): the layout holder.commit sends
    item_keys = [
        keys.meta(work_id),
        keys.snap(work_id),
        keys.hist(work_id),
        keys.job(suffix),
        keys.sig(work_id),
    ]
    args: list[Any] = [
        work_id, token, epoch, f"{token}:0", 0, snap.model_dump_json(), "gather", "await",
        0, dispatch, suffix, 0, 0, '{"next":"await"}', "", "", "", "", "",
    ]  # fmt: skip
    more_keys, more_args = spawn_block(keys, work_id, children, keys.queue, "all")
    return item_keys + more_keys, args + more_args


def kids(parent: str, n: int) -> list[WorkItem]:
    return [
        WorkItem(engine="hashchain", payload={"steps": 1}, child_of=ChildOf(parent_id=parent))
        for _ in range(n)
    ]


async def test_a_repeated_spawning_commit_is_dup_and_a_stale_one_spawns_nothing(swarm):
    parent = await swarm.enqueue("fanout", {})
    keys = swarm.keys.for_engine("fanout")
    token, epoch = await lease(swarm, parent, keys)
    first = kids(parent, 3)
    call = commit_call(keys, parent, token, epoch, first)
    assert (await swarm.run_script("commit", *call, keys=keys))[0] == "OK"
    # The same commit again (its reply was lost): recognised, nothing created twice.
    assert await swarm.run_script("commit", *call, keys=keys) == ["DUP"]
    # The same step run again under the old lease with other children: refused.
    second = kids(parent, 3)
    again = commit_call(keys, parent, token, epoch, second)
    again[1][3] = f"{token}:again"
    assert await swarm.run_script("commit", *again, keys=keys) == ["STALE"]
    meta = (await swarm.status(parent)).meta
    assert meta.state == WorkState.AWAITING and meta.lease is None
    assert (meta.children_total, meta.children_finished, meta.children_wait) == (3, 0, 3)
    assert [k.work_id for k in await swarm.children(parent)] == [c.work_id for c in first]
    assert await swarm.metas([c.work_id for c in second]) == [None, None, None]
    counts = await swarm.counts()
    assert counts["scheduled"] == 3 and counts["awaiting"] == 1
