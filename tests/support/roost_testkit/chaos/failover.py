"""Failover soak: workers on a Sentinel group or a Cluster while its primary is replaced.

Worker processes run multi-step items (some delayed, some holding a resource, some enqueued
twice under an idempotency key) on a ``redis+sentinel://`` or ``redis+cluster://`` URL.
Under load, the primary of the namespace's slot is SIGKILLed (``kills`` times; each time it
is started again as a replica once a replica took over) and one manual failover runs
(``SENTINEL FAILOVER`` / ``CLUSTER FAILOVER``). No worker is restarted by hand.

On a cluster the namespace may be partitioned (``partitions``, see docs/scaling-out.md), and
the faults may include live reshards (``reshards``): ``valkey-cli --cluster reshard ...
--cluster-yes`` moves the lowest slots of one primary, up to and including a slot that holds a
partition with leased items, to another primary while the items run. The namespace's
name is chosen so that one partition's slot is among the first ``LOW_SLOTS`` slots (the
lowest of the first primary), so a reshard moves a few slots in a second or so while items
run, rather than thousands for half a minute.

It passes when every acknowledged enqueue exists and is done with contiguous versions and
the right hash chain, no step committed twice, each idempotency key maps to one item, no
acknowledged commit is missing (with ``wait_replicas`` on), no unfinished item is ever
unfindable and the indexes hold exactly the finished items at the end, and after each fault
commits resume within (failover time + lease TTL + 2 s) of the fault: within TTL + 2 s of
another node serving the namespace.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from roost.redis import RedisSwarm
from roost.redis.keys import Keys, partition_base
from roost.redis.placement import partition_of
from roost.redis.server.cluster import ClusterGroup
from roost.redis.server.nodes import Node, NodeGroup, wait_until
from roost.redis.server.pool import configured_binary
from roost.redis.server.sentinel import SentinelGroup
from roost.runtime import RuntimeEvent, WorkItem, WorkState
from roost_testkit.chaos.base import ChaosEnv, Result, audit, persist, stop_workers, until
from roost_testkit.chaos.history import COMMITS
from roost_testkit.chaos.invariants import Sampler, unfindable
from roost_testkit.chaos.soak import chain_items, done_count

Topology = Literal["sentinel", "cluster"]


@dataclass(frozen=True)
class FailoverConfig:
    topology: Topology = "sentinel"
    items: int = 90
    steps: int = 3
    workers: int = 3
    concurrency: int = 8
    lease_ttl: float = 3.0
    step_seconds: tuple[float, float] = (0.05, 0.15)
    delayed: float = 0.2
    idempotent: float = 0.2
    """Fraction of items sent with an idempotency key, and sent again after a failover."""
    resourced: float = 0.2
    """Fraction of items whose steps each hold one of ``RESOURCES`` resources."""
    kills: int = 2
    """Primary SIGKILLs (each followed by a restart of the killed node as a replica)."""
    manual: bool = True
    """Also one SENTINEL FAILOVER / CLUSTER FAILOVER under load."""
    wait_replicas: int = 1
    partitions: int = 1
    """The namespace's number of partitions (``ROOST_PARTITIONS``)."""
    reshards: int = 0
    """Live reshards (cluster only): each moves >= 1 slot holding a partition with leased
    items to another primary, with the command-line client."""
    timeout: float = 300.0
    seed: int = 11


RESOURCES = 4
LOW_SLOTS = 32
"""A resharded namespace has a partition in one of the slots 0 to ``LOW_SLOTS - 1``."""
OPEN_STATES = frozenset(str(s) for s in WorkState if not s.is_terminal)


@dataclass
class Fault:
    """One failover: ``at`` the kill (or the manual failover's request), ``promoted_at`` the
    moment only another node took the namespace's writes (see :func:`promoted`), ``healed_at``
    the old node back as a replica and the topology stable."""

    kind: str
    at: float = 0.0
    promoted_at: float = 0.0
    healed_at: float = 0.0


@dataclass(frozen=True)
class Moved:
    """A partition's slot a reshard moved: its keys and leased items on the source just
    before the reshard, and whether the target serves it after."""

    partition: int
    slot: int
    keys: int
    leased: int
    landed: bool


@dataclass
class FailoverState:
    faults: list[Fault] = field(default_factory=list[Fault])
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    partitions: list[Keys] = field(default_factory=list[Keys])
    """The namespace's keys in each partition, partition 0 first."""
    moved: list[Moved] = field(default_factory=list[Moved])
    """The partitions the reshards moved."""
    resharded: list[int] = field(default_factory=list[int])
    """How many slots each reshard moved."""


def _group(env: ChaosEnv, topology: Topology) -> NodeGroup:
    root = env.root / topology
    if topology == "sentinel":
        return SentinelGroup(root, binary=configured_binary())
    return ClusterGroup(root, binary=configured_binary())


def _primary_of(group: NodeGroup, key: str) -> Node:
    if isinstance(group, SentinelGroup):
        return group.primary()
    assert isinstance(group, ClusterGroup)
    return group.key_owner(key)


def promoted(group: NodeGroup, key: str, old: Node, timeout: float = 30.0) -> float:
    """Wait until only a node other than ``old`` takes the writes of ``key``; return then.

    That is once another node serves it and ``old``, if it still runs (a manual failover),
    is a replica: until Sentinel demotes it (some 10 s after ``SENTINEL FAILOVER``) the old
    primary accepts the writes of clients still connected to it, and the resync drops them.
    """
    if isinstance(group, SentinelGroup):

        def moved() -> bool:
            address = group.reported_primary()
            return address is not None and address != old.address

    else:
        assert isinstance(group, ClusterGroup)

        def moved() -> bool:
            owner = group.key_owner(key)
            return owner is not old and owner.alive

    wait_until(
        lambda: moved() and (not old.alive or old.role() == "slave"),
        timeout,
        f"new primary in place of {old.name}",
    )
    return time.time()


def kill_and_heal(group: NodeGroup, key: str, fault: Fault) -> None:
    """SIGKILL the namespace's primary, wait for a replica to take over, restart it as one."""
    old = _primary_of(group, key)
    fault.at = time.time()
    old.kill()
    fault.promoted_at = promoted(group, key, old)
    group.wait_failover(old)
    if isinstance(group, SentinelGroup):
        group.restart(old, as_replica=True)
        group.wait_stable()
    else:
        assert isinstance(group, ClusterGroup)
        group.restart(old)
        group.wait_ok()


def _manual_failover(group: NodeGroup, key: str, fault: Fault) -> None:
    if isinstance(group, SentinelGroup):
        fault.at = time.time()
        old = group.failover()
    else:
        assert isinstance(group, ClusterGroup)
        old = _primary_of(group, key)
        replica = group.replicas_of(old)[0]
        fault.at = time.time()
        group.failover(replica)
    fault.promoted_at = promoted(group, key, old)
    group.wait_failover(old)


def low_slot_namespace(prefix: str, partitions: int, rng: random.Random) -> str:
    """A namespace name one of whose partitions is in a slot below ``LOW_SLOTS``."""
    while True:
        name = f"chaos{rng.getrandbits(32):08x}"
        bases = [Keys(prefix, name, "q").home] + [
            partition_base(prefix, name, k) for k in range(1, partitions)
        ]
        if any(ClusterGroup.keyslot(b) < LOW_SLOTS for b in bases):
            return name


def reshard(group: NodeGroup, state: FailoverState, fault: Fault, wait: float = 10.0) -> None:
    """Move slots holding a partition from one primary to another with the CLI, under load.

    ``--cluster reshard`` moves a source's lowest slots: the source and count are chosen so
    the fewest slots move that still include a partition's slot, leaving the source at least
    one slot; it starts once that partition has leased items (waiting up to ``wait``
    seconds). The target is the primary whose lowest slot is highest, so the moved slots are
    its lowest and a next reshard can move them on as cheaply.
    """
    assert isinstance(group, ClusterGroup)
    group.wait_ok()
    primaries = group.primaries()
    where: dict[int, list[int]] = {}
    for p, keys in enumerate(state.partitions):
        where.setdefault(ClusterGroup.keyslot(keys.base), []).append(p)

    def leased(node: Node, slot: int) -> int:
        return sum(int(node.command("ZCARD", state.partitions[p].leases)) for p in where[slot])

    best: tuple[int, Node, list[int]] | None = None
    lowest: dict[str, int] = {}
    for source in primaries:
        owned = sorted(group.slots_of(source))
        lowest[source.name] = owned[0]
        for n, slot in enumerate(owned[:-1]):
            if slot in where:
                if best is None or n + 1 < best[0]:
                    best = (n + 1, source, owned[: n + 1])
                break
    if best is None:
        raise RuntimeError("no primary serves a partition's slot and another slot")
    count, source, moving = best
    others = [node for node in primaries if node is not source]
    target = max(others, key=lambda node: lowest[node.name])
    deadline = time.time() + wait
    while time.time() < deadline and not any(leased(source, s) for s in moving if s in where):
        time.sleep(0.02)
    before = [
        (p, slot, int(source.command("CLUSTER", "COUNTKEYSINSLOT", slot)), leased(source, slot))
        for slot in moving
        if slot in where
        for p in where[slot]
    ]
    fault.at = time.time()
    group.reshard(source, target, count)
    fault.promoted_at = time.time()
    state.resharded.append(count)
    state.moved += [
        Moved(p, slot, keys, held, group.slot_owner(slot) is target)
        for p, slot, keys, held in before
    ]
    group.wait_ok()


async def unfinished(swarm: RedisSwarm) -> int:
    """Items in the namespace's indexes that have not finished."""
    counts = await swarm.counts()
    return sum(n for s, n in counts.items() if s in OPEN_STATES)


async def feed(
    swarm: RedisSwarm, items: list[WorkItem], open_items: int, acked: dict[str, str]
) -> None:
    """Enqueue ``items`` keeping ``open_items`` unfinished; record each acknowledged id.

    What is open is read from the indexes, so an enqueue a failover lost (possible without
    ``wait_replicas``) does not count as open forever.
    """
    i = 0
    while i < len(items):
        room = open_items - await persist(lambda: unfinished(swarm))
        if room > 0:
            batch = items[i : i + room]
            ids = await persist(lambda batch=batch: swarm.enqueue_many(batch))
            for item, work_id in zip(batch, ids, strict=True):
                acked[item.work_id] = work_id
            i += len(batch)
        await asyncio.sleep(0.05)


async def progressed(state: FailoverState, progress: list[int], done: float) -> bool:
    """Wait until ``done`` items are done (True) or the soak stops (False)."""
    while progress[0] < done:
        if state.stop.is_set():
            return False
        await asyncio.sleep(0.1)
    return True


def marks(faults: int, items: int) -> list[float]:
    """Spread ``faults`` evenly over the run: the item counts at which each one starts."""
    return [(i + 1) / (faults + 1) * items for i in range(faults)]


async def _chaos(
    group: NodeGroup, key: str, state: FailoverState, progress: list[int], *, cfg: FailoverConfig
) -> None:
    plan = ["kill"] * cfg.kills + ["reshard"] * cfg.reshards + (["manual"] if cfg.manual else [])
    for kind, mark in zip(plan, marks(len(plan), cfg.items), strict=True):
        if not await progressed(state, progress, mark):
            return
        fault = Fault(kind)
        state.faults.append(fault)
        if kind == "reshard":
            await asyncio.to_thread(reshard, group, state, fault)
        else:
            heal = kill_and_heal if kind == "kill" else _manual_failover
            await asyncio.to_thread(heal, group, key, fault)
        fault.healed_at = time.time()


def resumed_within(events: list[RuntimeEvent], fault: Fault) -> float | None:
    """Seconds from the promotion of a new primary to the next commit (None: none came).

    The stream read at the end is the surviving history: a commit with a later timestamp
    was made on the new primary.
    """
    for e in events:
        if e.type in COMMITS and e.ts >= fault.promoted_at:
            return max(0.0, e.ts - fault.promoted_at)
    return None


async def failover_soak(env: ChaosEnv, cfg: FailoverConfig) -> Result:
    """Run the soak on a fresh topology; every check is in the result."""
    where = cfg.topology if cfg.partitions == 1 else f"{cfg.topology}, P = {cfg.partitions}"
    result = Result(f"failover soak ({where})", items=cfg.items)
    group = _group(env, cfg.topology)
    try:
        group.start()
        chaos = functools.partial(_chaos, cfg=cfg)
        return await soak(env, group, cfg, result, chaos)
    finally:
        group.close()


Chaos = Callable[[NodeGroup, str, FailoverState, list[int]], Awaitable[None]]
"""The faults of a soak: ``chaos(group, home_key, state, progress)``; ``progress[0]`` is the
number of items done so far; each fault goes to ``state.faults``."""


async def soak(
    env: ChaosEnv, group: NodeGroup, cfg: FailoverConfig, result: Result, chaos: Chaos
) -> Result:
    """Workers run the items on ``group`` while ``chaos`` runs; then every check."""
    settings = env.settings(
        group.url,
        lease_ttl=cfg.lease_ttl,
        max_attempts=10,
        wait_replicas=cfg.wait_replicas,
        partitions=cfg.partitions,
    )
    if cfg.reshards:
        name = low_slot_namespace(settings.redis_prefix, cfg.partitions, random.Random())
        settings = settings.model_copy(update={"namespace": name})
    items, keyed = failover_items(cfg, random.Random(cfg.seed))
    state = FailoverState()
    workers = await env.workers(settings, cfg.workers, cfg.concurrency)
    acked: dict[str, str] = {}
    progress = [0]
    async with env.swarm(settings) as swarm:
        state.partitions = swarm.partition_keys()
        probe = Sampler(swarm)
        probe.start()
        producer = asyncio.create_task(
            feed(swarm, items, cfg.workers * cfg.concurrency // 2, acked)
        )
        faults = asyncio.create_task(chaos(group, swarm.keys.base, state, progress))

        async def all_done() -> bool:
            if faults.done() and faults.exception() is not None:
                return True
            progress[0] = await done_count(swarm)
            if not (producer.done() and faults.done()):
                return False
            # Finished when nothing is unfinished (an enqueue a failover lost never ends).
            return await unfinished(swarm) == 0

        finished = await until(all_done, cfg.timeout, interval=0.25)
        state.stop.set()
        producer.cancel()
        await asyncio.gather(producer, return_exceptions=True)
        await probe.stop()
        probe.report(result)
        try:
            await faults
        except Exception as exc:
            result.check(False, f"the failover helper crashed: {exc!r}")
        result.check(finished, f"only {progress[0]} of {cfg.items} items done in {cfg.timeout}s")
        result.check(len(acked) == cfg.items, f"{len(acked)} items acknowledged of {cfg.items}")
        # An acknowledged enqueue the new primary never had (possible without wait_replicas).
        ids = list(acked.values())
        metas = await persist(lambda: swarm.metas(ids))
        lost = {w for w, m in zip(ids, metas, strict=True) if m is None}
        if cfg.wait_replicas:
            result.check(not lost, f"{len(lost)} acknowledged enqueues are missing")
        # The same keyed items again, after the failovers: each key gives its first id.
        again = [items[i] for i in keyed if acked.get(items[i].work_id) not in lost]
        again_ids = await persist(lambda: swarm.enqueue_many(again))
        split = [
            (item.idempotency_key, acked.get(item.work_id), second)
            for item, second in zip(again, again_ids, strict=True)
            if acked.get(item.work_id) != second
        ]
        result.check(not split, f"idempotency keys that gave two work ids: {split[:3]}")
        exited = {p.name: p.returncode for p in workers if not p.alive()}
        result.check(not exited, f"workers exited during the failovers: {exited}")
        codes = await stop_workers(env, workers, settings.grace_period + 10)
        result.check(all(c == 0 for c in codes.values()), f"bad exit on SIGTERM: {codes}")
        # every acknowledged enqueue must exist, done, at the right version (audit_items)
        steps = {work_id: cfg.steps for work_id in ids if work_id not in lost}
        events = await audit(swarm, env, result, steps, lost_acks_ok=not cfg.wait_replicas)
        await check_indexes(swarm, result, len(steps))
    check_resumed(result, events, state.faults, cfg.lease_ttl)
    planned = cfg.kills + cfg.reshards + int(cfg.manual)
    result.check(len(state.faults) == planned, f"faults: {state.faults}")
    if cfg.reshards:
        check_moved(result, events, state, cfg.partitions)
    result.notes.update(
        topology=cfg.topology,
        wait_replicas=cfg.wait_replicas,
        idempotent_resent=len(again),
        acked_enqueues_lost=len(lost),
    )
    return result


def failover_items(cfg: FailoverConfig, rng: random.Random) -> tuple[list[WorkItem], list[int]]:
    """The soak's items, and the indexes of those sent under an idempotency key."""
    items = chain_items(cfg.items, cfg.steps, cfg.step_seconds, rng, cfg.delayed)
    for i in rng.sample(range(len(items)), int(len(items) * cfg.resourced)):
        items[i] = items[i].model_copy(update={"resources": [f"res-{i % RESOURCES}"]})
    keyed = rng.sample(range(len(items)), int(len(items) * cfg.idempotent))
    for n, i in enumerate(keyed):
        # In a resource's group, so that a partitioned namespace places both together.
        group = items[i].resources[0] + "/" if items[i].resources else ""
        items[i] = items[i].model_copy(update={"idempotency_key": f"{group}key-{n}"})
    return items, keyed


async def check_indexes(swarm: RedisSwarm, result: Result, done: int) -> None:
    """Once everything finished: the done index holds ``done`` items and nothing else is
    queued, scheduled, running, leased, due or claimed."""
    counts = await persist(swarm.counts)
    async with swarm.client.pipeline(transaction=False) as pipe:
        for k in swarm.partition_keys():
            pipe.zcard(k.leases)
            pipe.zcard(k.due)
            for n in range(RESOURCES):
                pipe.exists(k.res(f"res-{n}"))
                pipe.zcard(k.resw(f"res-{n}"))
        left: list[int] = await pipe.execute()
    states = {s: n for s, n in counts.items() if n and not s.startswith("saq_")}
    result.check(states == {"done": done}, f"state indexes at the end: {states}")
    result.check(not any(left), f"leases, due, claims and waiters at the end: {left}")
    seen, problems = await unfindable(swarm)
    result.check(seen == 0 and not problems, f"unfinished at the end: {seen}, {problems[:3]}")


def check_moved(
    result: Result, events: list[RuntimeEvent], state: FailoverState, partitions: int
) -> None:
    """A reshard moved a slot holding a partition's keys and leased items, to its target,
    and that partition's items committed after the move."""
    running = [m for m in state.moved if m.keys and m.leased and m.landed]
    result.check(bool(running), f"no reshard moved a partition with leased items: {state.moved}")
    ends = [f.promoted_at for f in state.faults if f.kind == "reshard"]
    moved = {m.partition for m in running}
    after = [
        e
        for e in events
        if e.type in COMMITS
        and partition_of(e.work_id, partitions) in moved
        and any(e.ts >= end for end in ends)
    ]
    result.check(bool(after), f"no commit in the moved partitions {sorted(moved)} after the move")
    result.notes.update(
        moved_partitions=[(m.partition, m.slot, m.keys, m.leased) for m in state.moved],
        reshard_slots=state.resharded,
        commits_in_moved_partitions_after=len(after),
    )


def check_resumed(
    result: Result, events: list[RuntimeEvent], faults: list[Fault], lease_ttl: float
) -> None:
    """After each fault commits resumed within TTL + 2 s of the new primary serving."""
    bound = lease_ttl + 2.0
    resumed = [resumed_within(events, f) for f in faults]
    late = [(f.kind, r) for f, r in zip(faults, resumed, strict=True) if r is None or r > bound]
    result.check(
        not late, f"commits did not resume within failover time + TTL + 2 s: {late} (> {bound}s)"
    )
    result.resume([r for r in resumed if r is not None])
    result.notes.update(
        faults=[f.kind for f in faults],
        failover_s=[round(f.promoted_at - f.at, 2) for f in faults],
        healed_s=[round(f.healed_at - f.at, 2) for f in faults],
        resumed_s=[None if r is None else round(r, 2) for r in resumed],
        resumed_from_fault_s=[
            None if r is None else round(f.promoted_at - f.at + r, 2)
            for f, r in zip(faults, resumed, strict=True)
        ],
    )
