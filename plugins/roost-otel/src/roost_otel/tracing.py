"""The trace observer: spans for step attempts, trace context carried in work items.

At enqueue, :meth:`TraceObserver.enqueue_headers` starts (and ends) a ``roost enqueue``
span as a child of the caller's current span, and stores its context in the items'
``headers`` (W3C ``traceparent``/``tracestate``, through the global propagator). A worker
then starts one ``roost step <engine>`` span per step attempt as a child of that context,
so every attempt of every step, on whichever worker, joins one trace. The span is the
current span while the engine runs: spans the engine makes nest under it.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from roost.runtime.observe import StepObserver, StepRecord

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["ATTRIBUTE_PREFIX", "TraceObserver"]

ATTRIBUTE_PREFIX = "roost."
"""Every attribute the observer sets starts with this."""

_FAILED = frozenset({"retried", "failed", "dead"})


class TraceObserver(StepObserver):
    """Traces step attempts and carries trace context into enqueued work.

    Args:
        tracer_provider: the provider to trace with (default: the global one, looked up
            at each use, so configuring the SDK after Roost loads its plugins works).
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self.tracer_provider = tracer_provider

    def _tracer(self) -> trace.Tracer:
        return trace.get_tracer("roost", tracer_provider=self.tracer_provider)

    def enqueue_headers(self) -> dict[str, str]:
        """A ``roost enqueue`` span under the caller's current span, as headers."""
        span = self._tracer().start_span("roost enqueue", kind=SpanKind.PRODUCER)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        span.end()
        return carrier

    def step_started(self, record: StepRecord) -> None:
        """Start the attempt's span and make it current in the engine's context."""
        parent = propagate.extract(record.headers)
        attributes: dict[str, str | int | float] = {
            "roost.work_id": record.work_id,
            "roost.engine": record.engine,
            "roost.version": record.version,
            "roost.attempt": record.attempt,
            "roost.worker": record.worker_id,
        }
        if record.queued_for is not None:
            attributes["roost.queued_seconds"] = record.queued_for
        if record.late_by is not None:
            attributes["roost.late_seconds"] = record.late_by
        span = self._tracer().start_span(
            f"roost step {record.engine}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )
        record.scratch[self] = span
        if record.context is None:
            record.context = contextvars.copy_context()
        record.context.run(otel_context.attach, trace.set_span_in_context(span, parent))

    def step_ended(self, record: StepRecord) -> None:
        """Set the outcome on the attempt's span and end it."""
        span: Span | None = record.scratch.pop(self, None)
        if span is None:
            return
        span.set_attribute("roost.outcome", record.outcome or "")
        if record.detail:
            span.set_attribute("roost.outcome_detail", record.detail)
        if record.outcome in _FAILED:
            span.set_status(Status(StatusCode.ERROR, record.detail or record.outcome))
        span.end()
