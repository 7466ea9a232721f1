"""Step observers and the Prometheus metrics on a real server: outcomes, latencies, gauges."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from roost.redis import RedisSwarm
from roost.redis.metrics import QueueReader, WorkerMetrics, queue_metrics_text
from roost.runtime import WorkState
from roost.runtime.observe import StepObserver, StepRecord
from roost_testkit.engines import HashChainEngine


class Recorder(StepObserver):
    def __init__(self) -> None:
        self.started: list[StepRecord] = []
        self.ended: list[StepRecord] = []
        self.renewed = 0

    def step_started(self, record: StepRecord) -> None:
        self.started.append(record)

    def step_ended(self, record: StepRecord) -> None:
        self.ended.append(record)

    def leases_renewed(self, count: int) -> None:
        self.renewed += count


def samples(text: bytes | str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = text.decode() if isinstance(text, bytes) else text
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def state_of(swarm: RedisSwarm, work_id: str) -> WorkState:
    return (await swarm.status(work_id)).meta.state


async def test_observer_sees_every_attempt_with_its_outcome(swarm, running_worker, until):
    rec = Recorder()
    ok = await swarm.enqueue("hashchain", {"steps": 2})
    flaky = await swarm.enqueue("hashchain", {"steps": 1, "mode": "raise", "fail_times": 1})
    dead = await swarm.enqueue("hashchain", {"steps": 1, "mode": "raise"}, max_attempts=2)
    async with running_worker([HashChainEngine()], observers=[rec]):

        async def finished() -> bool:
            states = [await state_of(swarm, w) for w in (ok, flaky, dead)]
            return states == [WorkState.DONE, WorkState.DONE, WorkState.DEAD]

        await until(finished)
    assert len(rec.started) == len(rec.ended)
    by_item: dict[str, list[tuple[int, int, str | None]]] = {}
    for r in rec.ended:
        by_item.setdefault(r.work_id, []).append((r.version, r.attempt, r.outcome))
        assert r.engine == "hashchain" and r.duration >= 0 and r.worker_id
    # init (v1) and two steps, all committed, first attempts.
    assert by_item[ok] == [(1, 1, "committed"), (2, 1, "committed"), (3, 1, "committed")]
    assert by_item[flaky] == [(1, 1, "committed"), (2, 1, "retried"), (2, 2, "committed")]
    assert by_item[dead] == [(1, 1, "committed"), (2, 1, "retried"), (2, 2, "dead")]
    firsts = {r.work_id: r for r in rec.started if r.version == 1}
    assert all(firsts[w].queued_for is not None and firsts[w].queued_for >= 0 for w in firsts)
    # The retry was promoted from its backoff: its start carries how late it was.
    retried = [r for r in rec.started if r.work_id == flaky and r.attempt == 2]
    assert retried[0].late_by is not None and retried[0].late_by >= 0
    assert retried[0].queued_for is not None


async def test_worker_metrics_count_outcomes_and_queue_gauges_match_counts(
    swarm, running_worker, until
):
    metrics = WorkerMetrics(CollectorRegistry(), slots={"hashchain": 4})
    ids = [await swarm.enqueue("hashchain", {"steps": 2}) for _ in range(5)]
    dead = await swarm.enqueue("hashchain", {"steps": 1, "mode": "raise"}, max_attempts=1)
    await swarm.enqueue("hashchain", {"steps": 1}, delay_seconds=600)
    async with running_worker([HashChainEngine()], observers=[metrics]):

        async def settled() -> bool:
            states = [await state_of(swarm, w) for w in [*ids, dead]]
            return states == [WorkState.DONE] * 5 + [WorkState.DEAD]

        await until(settled)
    got = samples(generate_latest(metrics.registry))
    committed = got[("roost_steps_total", (("engine", "hashchain"), ("outcome", "committed")))]
    assert committed == 5 * 3 + 1  # five items of init + 2 steps; the dead one's init
    assert got[("roost_steps_total", (("engine", "hashchain"), ("outcome", "dead")))] == 1
    assert got[("roost_step_duration_seconds_count", (("engine", "hashchain"),))] == 17
    assert got[("roost_step_queue_latency_seconds_count", (("engine", "hashchain"),))] >= 6
    assert got[("roost_worker_slots", (("engine", "hashchain"),))] == 4
    assert got[("roost_worker_steps_running", (("engine", "hashchain"),))] == 0

    reader = QueueReader(swarm)
    await reader.read()  # learns the engines
    text = await queue_metrics_text(reader)
    gauges = samples(text)
    counts = await swarm.counts()
    q = swarm.settings.queue
    for state in ("queued", "scheduled", "running", "done", "dead"):
        assert gauges[("roost_work_items", (("queue", q), ("state", state)))] == counts[state]
    assert counts["done"] == 5 and counts["dead"] == 1 and counts["scheduled"] == 1
    assert gauges[("roost_redis_up", ())] == 1
    assert gauges[("roost_live_workers", (("queue", q),))] == 0  # it deregistered
    queued_list = (("engine", "hashchain"), ("list", "queued"), ("queue", q))
    assert gauges[("roost_engine_deliveries", queued_list)] == 0


async def test_oldest_queued_age_grows_with_no_worker(swarm, until):
    reader = QueueReader(swarm)
    first = await reader.read()
    assert first.oldest_queued_age == 0.0 and first.states["queued"] == 0
    await swarm.enqueue("hashchain", {"steps": 1})
    await swarm.enqueue("hashchain", {"steps": 1})

    async def aged() -> bool:
        return (await reader.read()).oldest_queued_age >= 0.2

    await until(aged)
    reading = await reader.read()
    assert reading.states["queued"] == 2
    assert reading.engines == {"hashchain": (2, 0, 0)}
