"""The spawning commit at the script level: a repeat is DUP, a stale one spawns nothing."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from roost.redis import RedisSwarm
from roost.redis.children import spawn_block
from roost.redis.contract import Code
from roost.redis.keys import Keys, new_token
from roost.redis.replies import CommitReply
from roost.runtime import ChildOf, Snapshot, WorkItem, WorkState
from roost_testkit.by_hand import lease


def commit_call(
    swarm: RedisSwarm,
    keys: Keys,
    work_id: str,
    token: str,
    epoch: int,
    children: list[WorkItem],
    op: str | None = None,
) -> Callable[[], Awaitable[CommitReply]]:
    """A spawning commit that awaits all its children, as holder.commit sends it."""
    snap = Snapshot(work_id=work_id, engine="fanout", step="gather", version=1)
    child_keys, child_args = spawn_block(keys, children, keys.queue)
    return functools.partial(
        swarm.calls.commit,
        keys,
        work_id=work_id,
        token=token,
        epoch=epoch,
        op=op or f"{token}:0",
        resources=[],
        expected_version=0,
        snapshot_json=snap.model_dump_json(),
        step="gather",
        outcome="await",
        delay_ms=0,
        dispatch=new_token(),
        history=0,
        event_data='{"next":"await"}',
        init_json="",
        init_step="",
        ended_ms=None,
        wait="",
        budget="",
        children=child_keys,
        children_args=child_args,
        kids_wait="all",
    )


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
    call = commit_call(swarm, keys, parent, token, epoch, first)
    assert (await call()).code is Code.OK
    # The same commit again (its reply was lost): recognised, nothing created twice.
    assert (await call()).code is Code.DUP
    # The same step run again under the old lease with other children: refused.
    second = kids(parent, 3)
    again = commit_call(swarm, keys, parent, token, epoch, second, op=f"{token}:again")
    assert (await again()).code is Code.STALE
    meta = (await swarm.status(parent)).meta
    assert meta.state == WorkState.AWAITING and meta.lease is None
    assert (meta.children_total, meta.children_finished, meta.children_wait) == (3, 0, 3)
    assert [k.work_id for k in await swarm.children(parent)] == [c.work_id for c in first]
    assert await swarm.metas([c.work_id for c in second]) == [None, None, None]
    counts = await swarm.counts()
    assert counts["scheduled"] == 3 and counts["awaiting"] == 1
