"""Lagging replica: the primary dies while its replica is seconds behind.

The failover soak of :mod:`roost_testkit.chaos.failover` on a Sentinel group whose data
nodes sit behind :class:`~roost.redis.server.proxy.TcpProxy` proxies (``proxied=True``), so
the replica's link to the primary passes through the primary's proxy. In each round, once
another share of the items is done, the proxy delays the replication stream by ``lag``
seconds for ``lag_for`` seconds (the replica keeps receiving it, ``lag`` seconds late); then
the link is frozen, the primary SIGKILLed, the bytes still held in the proxy dropped (what a
dead primary had not sent yet is gone), the replica promoted by the sentinels and the old
primary restarted as its replica.

Without ``ROOST_WAIT_REPLICAS`` every commit and enqueue acknowledged in the last ``lag``
seconds before the kill is gone from the new primary: the notes count them
(``acked_commits_lost``, ``acked_enqueues_lost``), and the steps run again. With
``ROOST_WAIT_REPLICAS=1`` a commit is acknowledged only once the replica has it, so none may
be lost. Every other check of the failover soak applies; ``lag_bytes`` records how far
behind the replica was at each kill (the proof that it lagged).
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass

from roost.redis.server.nodes import Node, NodeGroup
from roost.redis.server.pool import configured_binary
from roost.redis.server.sentinel import SentinelGroup
from roost_testkit.chaos.base import ChaosEnv, Result
from roost_testkit.chaos.failover import (
    FailoverConfig,
    FailoverState,
    Fault,
    marks,
    progressed,
    promoted,
    soak,
)


@dataclass(frozen=True)
class LagConfig(FailoverConfig):
    """``kills`` rounds of lag then SIGKILL; no manual failover."""

    kills: int = 1
    manual: bool = False
    lag: float = 0.5
    """Seconds by which the replication stream reaches the replica late."""
    lag_for: float = 3.0
    """Seconds of lag before each kill."""


def lag_bytes(primary: Node, replica: Node) -> int:
    """How many bytes of the replication stream the replica has not processed yet."""
    sent = int(primary.info("replication")["master_repl_offset"])
    return sent - int(replica.info("replication")["slave_repl_offset"])


def _lag_and_kill(group: SentinelGroup, key: str, cfg: LagConfig, fault: Fault) -> int:
    """One round: lag, freeze, SIGKILL the primary, drop what it had not delivered, heal."""
    old = group.primary()
    replica = next(node for node in group.nodes if node is not old and node.alive)
    proxy = old.proxy
    assert proxy is not None
    proxy.set_delay(cfg.lag)
    time.sleep(cfg.lag_for)
    proxy.pause()
    behind = lag_bytes(old, replica)
    fault.at = time.time()
    old.kill()
    proxy.cut("replication")
    proxy.set_delay(0)
    proxy.resume()
    fault.promoted_at = promoted(group, key, old)
    group.wait_failover(old)
    group.restart(old, as_replica=True)
    group.wait_stable()
    return behind


async def _rounds(
    group: NodeGroup,
    key: str,
    state: FailoverState,
    progress: list[int],
    *,
    cfg: LagConfig,
    behind: list[int],
) -> None:
    assert isinstance(group, SentinelGroup)
    for mark in marks(cfg.kills, cfg.items):
        if not await progressed(state, progress, mark):
            return
        fault = Fault("lagging kill")
        state.faults.append(fault)
        behind.append(await asyncio.to_thread(_lag_and_kill, group, key, cfg, fault))
        fault.healed_at = time.time()


async def lagging_replica(env: ChaosEnv, cfg: LagConfig) -> Result:
    """Run the lagging-replica soak on a fresh proxied Sentinel group."""
    mode = f"wait_replicas={cfg.wait_replicas}"
    result = Result(f"lagging replica ({mode})", items=cfg.items)
    group = SentinelGroup(env.root / "sentinel", proxied=True, binary=configured_binary())
    behind: list[int] = []
    try:
        group.start()
        chaos = functools.partial(_rounds, cfg=cfg, behind=behind)
        await soak(env, group, cfg, result, chaos)
    finally:
        group.close()
    result.check(
        len(behind) == cfg.kills and all(b > 0 for b in behind),
        f"the replica was not behind at every kill: {behind} bytes",
    )
    result.notes["lag_bytes"] = behind
    return result
