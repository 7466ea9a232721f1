"""Taking an item's delivery and lease by hand, as a worker would, for script-level tests."""

from __future__ import annotations

from roost.redis import RedisSwarm
from roost.redis.contract import Code
from roost.redis.keys import Keys, new_token


async def lease(swarm: RedisSwarm, work_id: str, keys: Keys) -> tuple[str, int]:
    """Take ``work_id``'s delivery off ``keys``' list and its lease; return token and epoch."""
    (job,) = (await swarm.calls.dequeue(keys, n=1)).jobs
    parsed = keys.parse_job(job)
    assert parsed is not None and parsed[0] == work_id, (parsed, work_id)
    token = new_token()
    reply = await swarm.calls.acquire(
        keys,
        work_id=work_id,
        dispatch=parsed[1],
        token=token,
        job=job,
        resources=[],
        max_attempts=5,
        wait_base_ms=50,
        wait_cap_ms=1000,
        engine_limits="",
    )
    assert reply.code is Code.OK, reply
    return token, reply.epoch
