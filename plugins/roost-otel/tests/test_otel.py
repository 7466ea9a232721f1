"""roost-otel on a real server: spans per step attempt, one trace per item across workers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from roost.redis import RedisSwarm
from roost.runtime import (
    Registry,
    RoostSettings,
    Snapshot,
    WorkItem,
    WorkState,
    get_plugin_manager,
    hookimpl,
)
from roost.runtime.observe import StepObserver
from roost_otel import TraceObserver
from roost_otel import plugin as otel_plugin
from roost_testkit.engines import HashChainEngine


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    p = TracerProvider()
    p.add_span_processor(SimpleSpanProcessor(exporter))
    return p


@pytest.fixture
def registry(provider: TracerProvider) -> Registry:
    observer = TraceObserver(provider)

    class Tracing:
        @hookimpl
        def roost_register_observers(self, register: Callable[[StepObserver], None]) -> None:
            register(observer)

    return Registry.load(get_plugin_manager(plugins=[Tracing()], autoload=False))


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> RoostSettings:
    # A retry backoff of 2-4 s: long enough to stop one worker and start the next.
    return RoostSettings.from_env(
        {},
        redis_url=redis_url,
        home=tmp_path / "home",
        namespace=f"t{uuid.uuid4().hex[:8]}",
        lease_ttl=3.0,
        retry_delay=4.0,
        retry_max_delay=4.0,
        grace_period=2.0,
    )


async def state(swarm: RedisSwarm, work_id: str) -> WorkState:
    return (await swarm.status(work_id)).meta.state


async def until(check: Callable[[], Any], timeout: float = 20.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.02)


async def run_until(
    settings: RoostSettings, registry: Registry, engine: Any, done: Callable[[], Any]
) -> str:
    worker = RedisSwarm(settings, registry=registry)
    await worker.connect()
    task = asyncio.create_task(worker.run_worker([engine], install_signal_handlers=False))
    try:
        await until(done)
        return worker.worker_id
    finally:
        worker.stop_worker()
        await asyncio.wait_for(task, 20)
        await worker.close()


def steps_of(exporter: InMemorySpanExporter, work_id: str) -> list[ReadableSpan]:
    spans = [
        s
        for s in exporter.get_finished_spans()
        if s.attributes and s.attributes.get("roost.work_id") == work_id
    ]
    return sorted(spans, key=lambda s: s.start_time or 0)


def attrs(span: ReadableSpan, *names: str) -> tuple[Any, ...]:
    assert span.attributes is not None
    return tuple(span.attributes.get(f"roost.{n}") for n in names)


async def test_item_retried_across_two_workers_is_one_trace(
    settings: RoostSettings,
    registry: Registry,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    tracer = provider.get_tracer("caller")
    async with RedisSwarm(settings, registry=registry) as swarm:
        with tracer.start_as_current_span("caller") as caller:
            work_id = await swarm.enqueue(
                "hashchain", {"steps": 2, "modes": {"1": "raise"}, "fail_times": 1}
            )
        item = (await swarm.status(work_id)).item
        assert item is not None and "traceparent" in item.headers

        first = await run_until(
            settings,
            registry,
            HashChainEngine(),
            lambda: _is(swarm, work_id, WorkState.RETRYING),
        )
        second = await run_until(
            settings, registry, HashChainEngine(), lambda: _is(swarm, work_id, WorkState.DONE)
        )
    assert first != second
    trace_id = caller.get_span_context().trace_id
    spans = steps_of(exporter, work_id)
    assert [attrs(s, "version", "attempt", "outcome", "worker") for s in spans] == [
        (1, 1, "committed", first),  # init
        (2, 1, "retried", first),
        (2, 2, "committed", second),  # the retry, on the other worker
        (3, 1, "committed", second),
    ]
    assert all(s.context is not None and s.context.trace_id == trace_id for s in spans)
    assert all(s.name == "roost step hashchain" and s.kind == SpanKind.CONSUMER for s in spans)
    assert spans[1].status.status_code == StatusCode.ERROR
    assert attrs(spans[1], "outcome_detail") == ("RuntimeError",)
    assert spans[2].status.status_code != StatusCode.ERROR
    assert attrs(spans[2], "engine")[0] == "hashchain"
    (enqueue,) = [s for s in exporter.get_finished_spans() if s.name == "roost enqueue"]
    assert (
        enqueue.parent is not None and enqueue.parent.span_id == caller.get_span_context().span_id
    )
    assert all(s.parent is not None and s.parent.span_id == enqueue.context.span_id for s in spans)  # type: ignore[union-attr]
    late = attrs(spans[2], "late_seconds")[0]
    assert isinstance(late, float) and late >= 0


async def _is(swarm: RedisSwarm, work_id: str, wanted: WorkState) -> bool:
    return await state(swarm, work_id) == wanted


class SpanningEngine:
    """Records the span current while its step runs, and makes one of its own."""

    engine_id = "spans"

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.seen: list[int] = []

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id, step="go")

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        self.seen.append(trace.get_current_span().get_span_context().span_id)
        with self.provider.get_tracer("engine").start_as_current_span("engine work"):
            await asyncio.sleep(0)
        return snapshot.model_copy(update={"is_finished": True, "step": "done"})


async def test_engine_spans_nest_under_the_step_span_and_work_without_caller(
    settings: RoostSettings,
    registry: Registry,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    engine = SpanningEngine(provider)
    async with RedisSwarm(settings, registry=registry) as swarm:
        work_id = await swarm.enqueue("spans", {})  # no current span: the enqueue span is root
        await run_until(settings, registry, engine, lambda: _is(swarm, work_id, WorkState.DONE))
    init, step = steps_of(exporter, work_id)
    assert step.context is not None and engine.seen == [step.context.span_id]
    (inner,) = [s for s in exporter.get_finished_spans() if s.name == "engine work"]
    assert inner.parent is not None and inner.parent.span_id == step.context.span_id
    (enqueue,) = [s for s in exporter.get_finished_spans() if s.name == "roost enqueue"]
    assert enqueue.parent is None
    assert init.context is not None and init.context.trace_id == enqueue.context.trace_id  # type: ignore[union-attr]


def test_plugin_registers_a_trace_observer_on_the_global_provider() -> None:
    registry = Registry.load(get_plugin_manager(plugins=[otel_plugin], autoload=False))
    (observer,) = registry.observers
    assert isinstance(observer, TraceObserver) and observer.tracer_provider is None
    # No SDK configured globally: nothing is recorded and no headers are added.
    assert observer.enqueue_headers() == {}


def test_plugin_is_an_entry_point() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="roost") if e.name == "otel"]
    assert ep.value == "roost_otel.plugin"
