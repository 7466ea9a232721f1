"""A live probe of invariant I3: every unfinished item is findable, at every instant.

One read-only Lua script (so the snapshot is atomic) lists the unfinished items of the state
indexes and checks that each one can be picked up again by someone:

- ``queued``: a delivery with the item's *current* dispatch token is on the queued or
  active list of its engine (a stale delivery is refused by ``acquire``, and one on another
  engine's list is never taken, so neither counts);
- ``scheduled``, ``retrying``, ``waiting``: the item is in the due index;
- ``running``: the item is in the lease index;
- ``awaiting`` its children (``kwait`` set): enough of its children are unfinished to make
  up the count it waits for (the last of them to finish makes it due);

and that its meta hash agrees with the index it is in. It builds the meta keys from a
prefix and each engine's list names (the engines come from the queue's set of engines) from
templates that ``Keys`` made, which is fine for this test-only probe on a standalone server
(Roost's own scripts take every key through KEYS).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from roost.redis import RedisSwarm
from roost.redis.faults import is_outage
from roost_testkit.chaos.base import Result

PROBE = """
local queued, scheduled, retrying, waiting, running = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local due, leases, engines, awaiting = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local meta_prefix, mark = ARGV[1], ARGV[2]
-- Templates of an engine's queued list, active list and job prefix, with mark for the engine.
local function named(template, engine)
  local at = string.find(template, mark, 1, true)
  return string.sub(template, 1, at - 1) .. engine .. string.sub(template, at + #mark)
end
local deliveries = {}
for _, engine in ipairs(redis.call('SMEMBERS', engines)) do
  local job_prefix = named(ARGV[5], engine)
  for _, list in ipairs({named(ARGV[3], engine), named(ARGV[4], engine)}) do
    for _, job in ipairs(redis.call('LRANGE', list, 0, -1)) do
      if string.sub(job, 1, #job_prefix) == job_prefix then
        deliveries[engine .. ' ' .. string.sub(job, #job_prefix + 1)] = true
      end
    end
  end
end
local out = {}
local seen = 0
local function bad(work_id, state, why) out[#out + 1] = work_id .. ' ' .. state .. ': ' .. why end
local checks = {{queued, 'queued'}, {scheduled, 'scheduled'}, {retrying, 'retrying'},
  {waiting, 'waiting'}, {running, 'running'}}
for _, c in ipairs(checks) do
  for _, work_id in ipairs(redis.call('ZRANGE', c[1], 0, -1)) do
    seen = seen + 1
    local f = redis.call('HMGET', meta_prefix .. work_id, 'state', 'disp', 'engine')
    if f[1] ~= c[2] then
      bad(work_id, c[2], 'meta says ' .. tostring(f[1]))
    elseif c[2] == 'queued' then
      if not (f[2] and deliveries[tostring(f[3]) .. ' ' .. work_id .. '|' .. f[2]]) then
        bad(work_id, 'queued', 'no delivery with its dispatch token')
      end
    elseif c[2] == 'running' then
      if not redis.call('ZSCORE', leases, work_id) then bad(work_id, 'running', 'no lease') end
    elseif not redis.call('ZSCORE', due, work_id) then
      bad(work_id, c[2], 'not in the due index')
    end
  end
end
for _, work_id in ipairs(redis.call('ZRANGE', awaiting, 0, -1)) do
  local meta = meta_prefix .. work_id
  local f = redis.call('HMGET', meta, 'state', 'kwait', 'kfin')
  if f[2] then
    seen = seen + 1
    local open = 0
    for _, st in ipairs(redis.call('HVALS', meta .. ':kids')) do
      if st == '' then open = open + 1 end
    end
    if f[1] ~= 'awaiting' then
      bad(work_id, 'awaiting', 'meta says ' .. tostring(f[1]))
    elseif tonumber(f[3] or '0') + open < tonumber(f[2]) then
      bad(work_id, 'awaiting', 'too few unfinished children to wake it')
    end
  end
end
return {seen, out}
"""


MARK = "ENGINE-ID"
"""Stands for the engine id in the list-name templates the probe gets."""


async def unfindable(swarm: RedisSwarm) -> tuple[int, list[str]]:
    """(unfinished items seen, problems) of one atomic look at each partition in turn."""
    seen, problems = 0, []
    for k in swarm.partition_keys():
        keys = [
            k.state("queued"),
            k.state("scheduled"),
            k.state("retrying"),
            k.state("waiting"),
            k.state("running"),
            k.due,
            k.leases,
            k.engines,
            k.state("awaiting"),
        ]
        route = k.for_engine(MARK)
        args = [k.meta(""), MARK, route.saq_queued, route.saq_active, route.job("")]
        reply: Any = await swarm.client.eval(PROBE, len(keys), *keys, *args)
        seen += int(reply[0])
        problems += [str(p) for p in reply[1]]
    return seen, problems


class Sampler:
    """Runs :func:`unfindable` every ``interval`` seconds while a scenario runs."""

    def __init__(self, swarm: RedisSwarm, interval: float = 0.5) -> None:
        self.swarm = swarm
        self.interval = interval
        self.samples = 0
        self.problems: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def _run(self) -> None:
        # Stopped by an event, not a cancel: on Python 3.11 a cancel landing inside
        # redis-py's timeout can come out as a TimeoutError (taken for an outage here) or be
        # retried away, and stop() then waited forever.
        while not self._stop.is_set():
            try:
                _seen, problems = await unfindable(self.swarm)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                problems = None
            if problems is not None:
                self.samples += 1
                self.problems += [f"sample {self.samples}: {p}" for p in problems]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._stop.set()
            await asyncio.gather(self._task, return_exceptions=True)

    def report(self, result: Result) -> None:
        result.check(self.samples > 0, "the I3 probe never got a sample")
        result.check(
            not self.problems,
            f"{len(self.problems)} unfinished items were unfindable (I3): {self.problems[:3]}",
        )
        result.notes["i3_samples"] = self.samples
