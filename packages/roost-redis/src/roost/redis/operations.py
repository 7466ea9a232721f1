"""Operations too long to live in ``RedisSwarm`` itself: replay."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.redis.keys import Keys, new_token
from roost.runtime.errors import ConflictError, NotFound
from roost.runtime.models import Snapshot, WorkItem, WorkStatus

if TYPE_CHECKING:
    from roost.redis.swarm import RedisSwarm

__all__ = ["replay"]


async def replay(
    swarm: RedisSwarm, work_id: str, *, version: int | None = None, as_new: bool = False
) -> str:
    """Run an item again from a snapshot; see :meth:`RedisSwarm.replay`."""
    current = await swarm.status(work_id)
    source = await _replay_source(swarm, work_id, current, version)
    if as_new:
        assert current.item is not None
        item = current.item.model_copy(
            update={
                "work_id": WorkItem(engine=current.meta.engine).work_id,
                "idempotency_key": None,
            }
        )
        seed = None
        if source is not None:
            seed = source.model_copy(
                update={
                    "work_id": item.work_id,
                    "version": 1,
                    "is_finished": False,
                    "next_step_delay_seconds": 0.0,
                }
            )
        return (await swarm.enqueue_many([item], seeds=[seed]))[0]
    if not current.meta.state.is_terminal or current.meta.lease is not None:
        raise ConflictError(
            f"work {work_id} is {current.meta.state}; replay in place needs a finished "
            "item (or use as_new)"
        )
    keys = swarm.keys.for_queue(current.meta.queue or swarm.settings.queue)
    keys = keys.for_engine(current.meta.engine)
    snap_json = ""
    if source is not None:
        snap_json = source.model_copy(
            update={
                "version": current.meta.version + 1,
                "is_finished": False,
                "next_step_delay_seconds": 0.0,
            }
        ).model_dump_json()
    dispatch = new_token()
    suffix = Keys.job_suffix(work_id, dispatch)
    reply = await swarm.run_script(
        "replay",
        [keys.meta(work_id), keys.snap(work_id), keys.hist(work_id), keys.job(suffix)],
        [
            work_id,
            current.meta.version,
            snap_json,
            dispatch,
            suffix,
            swarm.settings.history,
            "latest" if version is None else version,
        ],
        keys=keys,
    )
    if reply[0] != "OK":
        raise ConflictError(f"work {work_id} changed while replaying; try again")
    return work_id


async def _replay_source(
    swarm: RedisSwarm, work_id: str, current: WorkStatus, version: int | None
) -> Snapshot | None:
    if version == 0:
        return None
    if version is None or version == current.meta.version:
        if current.snapshot is None:
            return None
        return current.snapshot
    for snap in await swarm.snapshot_versions(work_id):
        if snap.version == version:
            return snap
    raise NotFound(
        f"work {work_id} has no kept snapshot version {version} "
        f"(ROOST_HISTORY={swarm.settings.history} keeps that many earlier versions)"
    )
