"""Prometheus metrics: a worker's step counters, and the queue's gauges read from Redis.

:class:`WorkerMetrics` is a step observer (:mod:`roost.runtime.observe`): it counts steps,
times them and counts lease renewals, losses and recoveries in memory, with no Redis call.
:class:`QueueReader` reads the queue's gauges (items per state, deliveries per engine,
oldest queued age, live workers) in ONE pipelined round trip per scrape;
:class:`QueueCollector` serves that reading to a ``prometheus_client`` registry. Labels are
bounded: ``engine``, ``outcome``, ``state``, ``queue`` and ``kind``, never a work id.

``roost worker --metrics-port N`` serves both on ``/metrics`` (:func:`serve_worker_metrics`);
the console serves the queue's gauges on its own ``/metrics``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from bisect import bisect_left
from collections.abc import Awaitable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from prometheus_client.registry import Collector

from roost.redis.faults import describe
from roost.redis.keys import STATE_ORDER
from roost.runtime.observe import OUTCOMES, StepObserver, StepRecord

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric

    from roost.redis.swarm import RedisSwarm

__all__ = [
    "DURATION_BUCKETS",
    "LATENCY_BUCKETS",
    "METRICS_CONTENT_TYPE",
    "QueueCollector",
    "QueueReader",
    "QueueReading",
    "WorkerMetrics",
    "queue_metrics_text",
    "reading_metrics",
    "serve_worker_metrics",
    "watch_queue",
]

log = logging.getLogger("roost.metrics")

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
"""Step duration buckets (seconds): agent steps run from milliseconds to many minutes."""

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
"""Buckets for enqueue-to-start latency and delay lateness (seconds)."""

METRICS_CONTENT_TYPE: str = CONTENT_TYPE_LATEST
"""The media type of Prometheus's text format, as ``/metrics`` answers it."""

SCRAPE_TIMEOUT = 5.0
"""How long a worker's scrape waits for the queue's Redis read."""


class _Histogram:
    """Bucket counts and a sum, in memory: an observation is a bisect and two additions."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        cumulative = list(accumulate(self.counts))
        buckets = [(repr(float(b)), c) for b, c in zip(self.bounds, cumulative, strict=False)]
        family.add_metric(labels, [*buckets, ("+Inf", cumulative[-1])], self.total)


class _Engine:
    """One engine's counters on this worker."""

    __slots__ = ("duration", "ended", "late", "outcomes", "queued", "started")

    def __init__(self) -> None:
        self.outcomes = dict.fromkeys(OUTCOMES, 0)
        self.started = 0
        self.ended = 0
        self.duration = _Histogram(DURATION_BUCKETS)
        self.queued = _Histogram(LATENCY_BUCKETS)
        self.late = _Histogram(LATENCY_BUCKETS)


class WorkerMetrics(StepObserver, Collector):
    """A worker's counters and histograms, kept in memory (one per worker process).

    The step path only adds to plain numbers on the worker's event loop (no lock, no
    Redis); a scrape turns them into metric families (:meth:`collect`).

    Args:
        registry: where the metrics are registered (default: a new one, ``self.registry``).
        slots: the worker's slots per engine, exported as ``roost_worker_slots``.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, slots: Mapping[str, int] | None = None
    ) -> None:
        self.slots = dict(slots or {})
        self.engines: dict[str, _Engine] = {e: _Engine() for e in self.slots}
        self.renewals = 0
        self.lost: dict[str, int] = {}
        self.recoveries = {"requeued": 0, "dead": 0, "redispatched": 0}
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(self)

    def _engine(self, engine: str) -> _Engine:
        found = self.engines.get(engine)
        if found is None:
            found = self.engines[engine] = _Engine()
        return found

    def step_started(self, record: StepRecord) -> None:
        """Count a running step; observe its queue latency and lateness."""
        m = self._engine(record.engine)
        m.started += 1
        if record.queued_for is not None:
            m.queued.observe(record.queued_for)
        if record.late_by is not None:
            m.late.observe(record.late_by)

    def step_ended(self, record: StepRecord) -> None:
        """Count the step's outcome and observe its duration."""
        m = self._engine(record.engine)
        m.ended += 1
        if record.outcome is not None:
            m.outcomes[record.outcome] += 1
        m.duration.observe(record.duration)

    def leases_renewed(self, count: int) -> None:
        """Count renewals."""
        self.renewals += count

    def lease_lost(self, engine: str) -> None:
        """Count a lost lease."""
        self.lost[engine] = self.lost.get(engine, 0) + 1

    def recovered(self, requeued: int, dead: int, redispatched: int) -> None:
        """Count what a recovery pass did."""
        self.recoveries["requeued"] += requeued
        self.recoveries["dead"] += dead
        self.recoveries["redispatched"] += redispatched

    def describe(self) -> Iterator[Metric]:
        """No fixed description: the registry takes the names from the first scrape."""
        return iter(())

    def collect(self) -> Iterator[Metric]:
        """The counters as metric families (called by the scraping thread)."""
        engines = sorted(self.engines.items())
        steps = CounterMetricFamily(
            "roost_steps",
            "Step attempts by outcome: committed, retried, failed, dead, interrupted, refused.",
            labels=["engine", "outcome"],
        )
        duration = HistogramMetricFamily(
            "roost_step_duration_seconds",
            "Time from a step's start to its outcome (engine call and commit).",
            labels=["engine"],
        )
        queued = HistogramMetricFamily(
            "roost_step_queue_latency_seconds",
            "Time an item waited queued before a worker took its lease (enqueue to start).",
            labels=["engine"],
        )
        late = HistogramMetricFamily(
            "roost_step_lateness_seconds",
            "How long after its due time a delayed, retried or waiting item started.",
            labels=["engine"],
        )
        running = GaugeMetricFamily(
            "roost_worker_steps_running", "Steps this worker is running.", labels=["engine"]
        )
        for engine, m in engines:
            for outcome, n in list(m.outcomes.items()):
                steps.add_metric([engine, outcome], n)
            m.duration.add_to(duration, [engine])
            m.queued.add_to(queued, [engine])
            m.late.add_to(late, [engine])
            running.add_metric([engine], max(m.started - m.ended, 0))
        slots = GaugeMetricFamily(
            "roost_worker_slots", "Slots this worker has, per engine.", labels=["engine"]
        )
        for engine, n in sorted(self.slots.items()):
            slots.add_metric([engine], n)
        renewals = CounterMetricFamily("roost_lease_renewals", "Leases this worker renewed.")
        renewals.add_metric([], self.renewals)
        lost = CounterMetricFamily(
            "roost_leases_lost", "Leases this worker lost while its step ran.", labels=["engine"]
        )
        for engine, n in sorted(self.lost.items()):
            lost.add_metric([engine], n)
        recoveries = CounterMetricFamily(
            "roost_recoveries",
            "What this worker's recovery passes did: requeued and dead expired leases, "
            "re-dispatched stranded deliveries.",
            labels=["kind"],
        )
        for kind, n in list(self.recoveries.items()):
            recoveries.add_metric([kind], n)
        yield from (steps, duration, queued, late, running, slots, renewals, lost, recoveries)


# -- the queue's gauges ---------------------------------------------------------------------


EngineCounts = tuple[int, int, int]


@dataclass
class QueueReading:
    """The queue's gauges, as one pipelined read found them."""

    queue: str
    states: dict[str, int]
    oldest_queued_age: float
    """Seconds the oldest queued item has waited (0 when none is queued)."""
    live_workers: int
    running: int
    engines: dict[str, EngineCounts] = field(default_factory=dict[str, "EngineCounts"])
    """Per engine: deliveries queued, deliveries taken (active), live workers running it."""


class QueueReader:
    """Reads a queue's gauges in one pipelined round trip.

    The engines are those the queue knew at the previous read (its set of engines is read
    in the same round trip, for the next one): a new engine's per-engine gauges appear from
    the second scrape after its first item.
    """

    def __init__(self, swarm: RedisSwarm) -> None:
        self.swarm = swarm
        self.engines: list[str] = []

    async def read(self) -> QueueReading:
        """One round trip: state counts, oldest queued, workers, per-engine lists.

        In a namespace of several partitions, each partition's counts are summed.
        """
        keys = self.swarm.keys
        parts = self.swarm.partition_keys()
        engines = list(self.engines)
        async with self.swarm.client.pipeline(transaction=False) as pipe:
            pipe.execute_command("TIME")
            pipe.zrange(keys.workers, 0, -1, withscores=True)
            for engine in engines:
                pipe.zrange(keys.live(engine), 0, -1, withscores=True)
            for part in parts:
                for s in STATE_ORDER:
                    pipe.zcard(part.state(s))
                pipe.zrange(part.state("queued"), 0, 0, withscores=True)
                pipe.smembers(part.engines)
                for engine in engines:
                    route = part.for_engine(engine)
                    pipe.llen(route.saq_queued)
                    pipe.llen(route.saq_active)
            replies: list[Any] = await pipe.execute()
        seconds, micros = replies[0]
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        workers: list[tuple[str, float]] = replies[1]
        lives: list[list[tuple[str, float]]] = replies[2 : 2 + len(engines)]
        n = len(STATE_ORDER)
        width = n + 2 + 2 * len(engines)
        states = dict.fromkeys(map(str, STATE_ORDER), 0)
        oldest: list[float] = []
        known: set[str] = set()
        lists = {e: [0, 0] for e in engines}
        for p in range(len(parts)):
            row = replies[2 + len(engines) + p * width : 2 + len(engines) + (p + 1) * width]
            for s, v in zip(STATE_ORDER, row[:n], strict=True):
                states[str(s)] += int(v)
            oldest += [score for _, score in row[n]]
            known |= set(row[n + 1])
            for i, engine in enumerate(engines):
                lists[engine][0] += int(row[n + 2 + 2 * i])
                lists[engine][1] += int(row[n + 3 + 2 * i])
        self.engines = sorted(known)
        per: dict[str, EngineCounts] = {
            engine: (queued, active, sum(1 for _, exp in live if exp > now_ms))
            for (engine, (queued, active)), live in zip(lists.items(), lives, strict=True)
        }
        return QueueReading(
            queue=keys.queue,
            states=states,
            oldest_queued_age=max(now_ms - min(oldest), 0) / 1000.0 if oldest else 0.0,
            live_workers=sum(1 for _, exp in workers if exp > now_ms),
            running=states.get("running", 0),
            engines=per,
        )


def reading_metrics(reading: QueueReading | None) -> Iterator[Metric]:
    """The gauges of ``reading`` (only ``roost_redis_up 0`` when Redis could not be read)."""
    up = GaugeMetricFamily("roost_redis_up", "Whether the last read of the queue's gauges worked.")
    up.add_metric([], 0 if reading is None else 1)
    yield up
    if reading is None:
        return
    q = reading.queue
    items = GaugeMetricFamily(
        "roost_work_items", "Items per state in the queue's namespace.", labels=["queue", "state"]
    )
    for state, count in reading.states.items():
        items.add_metric([q, state], count)
    yield items
    oldest = GaugeMetricFamily(
        "roost_oldest_queued_age_seconds",
        "How long the oldest queued item has waited (0 when none is queued).",
        labels=["queue"],
    )
    oldest.add_metric([q], reading.oldest_queued_age)
    yield oldest
    workers = GaugeMetricFamily("roost_live_workers", "Live workers.", labels=["queue"])
    workers.add_metric([q], reading.live_workers)
    yield workers
    busy = GaugeMetricFamily(
        "roost_slots_in_use", "Steps running across the fleet (leases held).", labels=["queue"]
    )
    busy.add_metric([q], reading.running)
    yield busy
    deliveries = GaugeMetricFamily(
        "roost_engine_deliveries",
        "Deliveries per engine: queued on its list, or taken by a worker (active).",
        labels=["queue", "engine", "list"],
    )
    live = GaugeMetricFamily(
        "roost_engine_live_workers", "Live workers running each engine.", labels=["queue", "engine"]
    )
    for engine, (queued, active, n) in sorted(reading.engines.items()):
        deliveries.add_metric([q, engine, "queued"], queued)
        deliveries.add_metric([q, engine, "active"], active)
        live.add_metric([q, engine], n)
    yield deliveries
    yield live


class QueueCollector(Collector):
    """Serves a queue's gauges to a registry scraped from a thread (the worker's server).

    Each ``collect`` runs one :meth:`QueueReader.read` on ``loop`` (the worker's event
    loop) and waits up to SCRAPE_TIMEOUT for it.
    """

    def __init__(self, reader: QueueReader, loop: asyncio.AbstractEventLoop) -> None:
        self.reader = reader
        self.loop = loop

    def collect(self) -> Iterator[Metric]:
        """Read the queue and yield its gauges."""
        reading: QueueReading | None = None
        future: concurrent.futures.Future[QueueReading] | None = None
        try:
            future = asyncio.run_coroutine_threadsafe(self.reader.read(), self.loop)
            reading = future.result(SCRAPE_TIMEOUT)
        except Exception as exc:  # a scrape reports Redis down; it never raises
            log.warning("metrics: could not read the queue's gauges: %s", describe(exc))
            if future is not None:
                future.cancel()  # a read still waiting on Redis ends with the scrape
        yield from reading_metrics(reading)


class _Fixed(Collector):
    def __init__(self, reading: QueueReading | None) -> None:
        self.reading = reading

    def collect(self) -> Iterator[Metric]:
        yield from reading_metrics(self.reading)


async def queue_metrics_text(reader: QueueReader | Awaitable[QueueReader]) -> bytes:
    """The queue's gauges in Prometheus's text format (one Redis round trip).

    ``reader`` may be awaitable (a console connecting to Redis on first use): a failure to
    get it or to read answers ``roost_redis_up 0``, never an error.
    """
    try:
        if not isinstance(reader, QueueReader):
            reader = await reader
        reading: QueueReading | None = await reader.read()
    except Exception as exc:
        log.warning("metrics: could not read the queue's gauges: %s", describe(exc))
        reading = None
    registry = CollectorRegistry()
    registry.register(_Fixed(reading))
    return generate_latest(registry)


def serve_worker_metrics(metrics: WorkerMetrics, port: int, host: str = "127.0.0.1") -> WSGIServer:
    """Serve ``metrics.registry`` on ``http://host:port/metrics`` from a thread.

    Bind before connecting to Redis (a port in use is the caller's error to report), then
    :func:`watch_queue` once the swarm is connected. ``shutdown()`` on the returned server
    stops it.

    Raises:
        OSError: the port cannot be bound.
    """
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server


def watch_queue(metrics: WorkerMetrics, swarm: RedisSwarm) -> None:
    """Add the queue's gauges to ``metrics``, read on the calling event loop at each scrape."""
    metrics.registry.register(QueueCollector(QueueReader(swarm), asyncio.get_running_loop()))
