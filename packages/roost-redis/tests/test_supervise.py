"""How long a supervised loop waits between failed passes, by what Redis answered.

An outage ends on its own, and when it does every loop must be back within a second: faults
in a row once kept each worker's promoter away for 27 s (its backoff had climbed to 5 s),
and the delayed items with it. A real failure of the call (a bug, a wrong key type) keeps
the longer backoff, so a loop that cannot work does not spin.
"""

from __future__ import annotations

import redis
from redis.exceptions import ResponseError

from roost.redis.supervise import BACKOFF_MAX, OUTAGE_BACKOFF_MAX, Health
from roost_testkit.redis_faults import out_of_memory


def _refusal(redis_url: str) -> tuple[ResponseError, ResponseError]:
    """An OOM refusal and a WRONGTYPE error, as the server answers them."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.set("supervise:string", "x")
        try:
            client.lpush("supervise:string", "y")
        except ResponseError as exc:
            wrong_type = exc
        with out_of_memory(redis_url):
            try:
                client.set("supervise:other", "x")
            except ResponseError as exc:
                oom = exc
        client.delete("supervise:string")
    finally:
        client.close()
    return oom, wrong_type


def test_an_outage_is_retried_at_least_once_a_second_however_long_it_lasts(redis_url: str):
    oom, wrong_type = _refusal(redis_url)
    assert str(oom).startswith("command not allowed") or "OOM" in str(oom)
    loop = Health().loop("promoter")
    delays = [loop.failed(oom) for _ in range(12)]
    assert delays[:3] == [0.05, 0.1, 0.2]
    assert max(delays) == OUTAGE_BACKOFF_MAX == 1.0
    assert delays[-1] == 1.0

    other = Health().loop("promoter")
    delays = [other.failed(wrong_type) for _ in range(12)]
    assert max(delays) == delays[-1] == BACKOFF_MAX > OUTAGE_BACKOFF_MAX


def test_a_shorter_cap_of_its_own_still_holds(redis_url: str):
    oom, _ = _refusal(redis_url)
    heartbeat = Health().loop("heartbeat")
    heartbeat.max_backoff = 0.5
    assert max(heartbeat.failed(oom) for _ in range(10)) == 0.5
