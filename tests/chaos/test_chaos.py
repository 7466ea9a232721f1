"""The reliability suite's CI tier: every scenario of ``scripts/chaos.py --quick``.

Each test runs one scenario against its own Redis server(s) and real worker processes (see
``roost_testkit.chaos``) and fails with the scenario's own failure messages. The figures
are checked here too, so a scenario that silently did less than it claims fails as well.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from roost_testkit.chaos.base import Result
from roost_testkit.chaos.scenarios import run, tier

# One scenario at a time (on one pytest worker): each times things against its own load.
pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.xdist_group("chaos"),
]

QUICK = {s.key: s for s in tier(full=False)}


async def scenario(key: str, tmp_path: Path) -> Result:
    result = await run(QUICK[key], tmp_path)
    assert result.passed, f"{result.name} failed:\n" + "\n".join(result.failures)
    return result


async def test_kill_soak_commits_every_step_once_from_the_lease_holder(tmp_path: Path):
    """Workers SIGKILLed every ~2 s and Redis SIGKILLed once: nothing lost, nothing twice."""
    cfg = QUICK["kill-soak"].config
    result = await scenario("kill-soak", tmp_path)
    assert result.commits == cfg.items * (cfg.steps + 1)
    assert result.duplicates == 0
    assert result.dead == 0
    assert result.notes["worker_kills"] >= 3
    assert result.notes["in_flight_at_kills"] >= 1
    assert result.notes["holders_checked"] == result.commits
    assert result.max_resume is not None and result.max_resume <= cfg.lease_ttl + 2.0


async def test_graceful_drain_commits_running_steps_and_releases_long_ones(tmp_path: Path):
    """SIGTERM: running steps commit, nothing new starts, a long step moves on unharmed."""
    cfg = QUICK["drain"].config
    result = await scenario("drain", tmp_path)
    assert result.notes["drain_exit_s"] <= cfg.grace + 2.0
    assert result.notes["second_signal_exit_s"] <= 1.5
    assert result.duplicates == 0 and result.dead == 0


async def test_drain_starts_no_step_after_sigterm_with_commits_in_flight(tmp_path: Path):
    """SIGTERM lands while step commits are in flight: the items go back, no new step starts."""
    result = await scenario("drain-inflight", tmp_path)
    assert result.notes["steps_started_after_stop"] == 0


async def test_redis_away_costs_no_attempts_and_no_workers(tmp_path: Path):
    """Redis SIGSTOPped for 10 s mid-run: workers ride it out, throughput comes back."""
    cfg = QUICK["redis-away"].config
    result = await scenario("redis-away", tmp_path)
    assert result.notes["outage_s"] >= cfg.outage
    assert result.notes["throughput_back_s"] <= cfg.recovery_bound
    assert result.commits == cfg.items * (cfg.steps + 1)
    assert result.dead == 0


async def test_stalled_worker_is_fenced(tmp_path: Path):
    """A step stalls its loop past the lease TTL; a new holder commits; the late one is refused."""
    result = await scenario("stall", tmp_path)
    assert result.fenced >= 1
    assert result.duplicates == 0


async def test_killed_items_resume_in_seconds_restarted_or_not(tmp_path: Path):
    """SIGKILL: a restart with the same id takes the leases back; without one, the heartbeat."""
    cfg = QUICK["resume"].config
    result = await scenario("resume", tmp_path)
    notes = result.notes
    assert notes["restart_resume_s"] <= cfg.restart_bound
    assert notes["vanish_resume_s"] <= cfg.vanish_bound
    assert result.commits == 2 * cfg.items * (cfg.steps + 1)
    assert result.duplicates == 0
    assert result.dead == 0


async def test_poison_goes_dead_after_its_attempts_and_retry_runs_it_once(tmp_path: Path):
    """A raising step and a worker-killing step go dead on their limits; retry runs them again."""
    cfg = QUICK["poison"].config
    result = await scenario("poison", tmp_path)
    assert result.notes["worker_deaths"] == cfg.exit_attempts
    assert result.dead == 2
    assert result.duplicates == 0


async def test_resource_claims_never_overlap(tmp_path: Path):
    """200 items on one gpu: one holder at a time, a killed holder's claim frees, no attempts."""
    cfg = QUICK["resources"].config
    result = await scenario("resources", tmp_path)
    assert result.notes["holder_intervals"]["gpu"] >= cfg.items * cfg.steps
    assert result.max_resume is not None and result.max_resume <= cfg.lease_ttl + 1.0
    assert result.dead == 0


async def test_idempotent_enqueue_under_concurrency(tmp_path: Path):
    """20 clients on separate connections enqueue the same keys at once: one item per key."""
    cfg = QUICK["enqueue"].config
    result = await scenario("enqueue", tmp_path)
    assert result.notes["clients"] == 20
    assert result.commits == cfg.keys * 2


async def test_redis_misbehaving_costs_no_attempts_and_no_workers(tmp_path: Path):
    """BUSY, OOM, READONLY, a deleted library under load: ridden out like outages, nothing lost."""
    cfg = QUICK["misbehave"].config
    result = await scenario("misbehave", tmp_path)
    assert result.items >= cfg.open_items
    assert result.commits == result.items * (cfg.steps + 1)
    assert result.dead == 0 and result.duplicates == 0
    assert result.notes["i3_samples"] > 0
    for fault in cfg.faults:
        assert result.notes[f"{fault}_back_s"] <= cfg.recovery_bound
    assert "killed" in result.notes["busy-script"].lower()
    assert "killed" in result.notes["busy-function"].lower()


async def test_schedules_make_one_item_per_tick_while_workers_die(tmp_path: Path):
    """1 s schedules tick while a worker is SIGKILLed every ~1.5 s: no tick lost or doubled."""
    cfg = QUICK["schedules"].config
    result = await scenario("schedules", tmp_path)
    assert result.notes["worker_kills"] >= 3
    assert result.items >= cfg.schedules * (cfg.seconds - 3)
    assert result.commits == result.items * 2
    assert result.duplicates == 0 and result.dead == 0


@pytest.mark.parametrize("topology", ["sentinel", "cluster"])
async def test_failover_loses_no_acknowledged_work(topology: str, tmp_path: Path):
    """The primary SIGKILLed twice (back as a replica each time) and a manual failover under
    load, replica-acknowledged commits: nothing acknowledged lost, work resumes each time."""
    key = f"failover-{topology}"
    cfg = QUICK[key].config
    result = await scenario(key, tmp_path)
    assert result.commits == cfg.items * (cfg.steps + 1)
    assert result.duplicates == 0
    assert result.notes["acked_commits_lost"] == 0
    assert result.notes["faults"] == ["kill", "kill", "manual"]
    assert result.notes["i3_samples"] > 0
    assert result.max_resume is not None and result.max_resume <= cfg.lease_ttl + 2.0


async def test_failover_and_live_reshard_of_a_partitioned_namespace(tmp_path: Path):
    """P = 16 on a 3-primary cluster: a primary SIGKILLed, slots holding a partition with
    leased items moved by ``valkey-cli --cluster reshard`` and a manual failover, all under
    load: nothing acknowledged lost, nothing twice, work resumes after each."""
    cfg = QUICK["failover-partitioned"].config
    assert cfg.partitions == 16 and cfg.wait_replicas == 1
    result = await scenario("failover-partitioned", tmp_path)
    assert result.commits == cfg.items * (cfg.steps + 1)
    assert result.duplicates == 0
    assert result.notes["acked_commits_lost"] == 0
    assert result.notes["faults"] == ["kill", "reshard", "manual"]
    assert any(keys and leased for _, _, keys, leased in result.notes["moved_partitions"])
    assert result.notes["commits_in_moved_partitions_after"] > 0
    assert result.notes["idempotent_resent"] > 0
    assert result.notes["i3_samples"] > 0
    assert result.max_resume is not None and result.max_resume <= cfg.lease_ttl + 2.0


async def test_a_lagging_replica_loses_no_replica_acknowledged_commit(tmp_path: Path):
    """The replica's link lags (a delaying proxy), then the primary is SIGKILLed: with
    ROOST_WAIT_REPLICAS=1 every acknowledged commit and enqueue is on the promoted replica."""
    cfg = QUICK["lagging-replica"].config
    assert cfg.wait_replicas == 1
    result = await scenario("lagging-replica", tmp_path)
    assert result.notes["lag_bytes"][0] > 0  # the replica really was behind at the kill
    assert result.notes["acked_commits_lost"] == 0
    assert result.notes["acked_enqueues_lost"] == 0
    assert result.commits == cfg.items * (cfg.steps + 1)
    assert result.duplicates == 0
    assert result.max_resume is not None and result.max_resume <= cfg.lease_ttl + 2.0


async def test_signals_are_never_lost_or_received_twice_under_worker_kills(tmp_path: Path):
    """Signals sent at random while workers are SIGKILLed: each received once, in order;
    budgets charged once per committed step."""
    cfg = QUICK["signals"].config
    result = await scenario("signals", tmp_path)
    assert result.items == cfg.items
    assert result.notes["signals"] == cfg.items * cfg.signals
    assert result.notes["metered_steps"] == cfg.metered * cfg.metered_steps
    assert result.duplicates == 0
    assert result.notes["worker_kills"] >= 3


async def test_children_under_worker_kills_run_once_and_parents_go_on_once(tmp_path: Path):
    """Parents fan out to children while workers are SIGKILLed: each child once, each parent
    continues exactly once with every outcome."""
    cfg = QUICK["children"].config
    result = await scenario("children", tmp_path)
    assert result.notes["worker_kills"] == cfg.kills
    assert result.notes["leases_recovered"] >= 1  # a kill hit children mid-step
    assert result.notes["children"] == cfg.parents * cfg.children
    assert result.commits == cfg.parents * cfg.children * (cfg.steps + 1)
    assert result.duplicates == 0 and result.dead == 0
