"""OpenTelemetry traces for Roost: one span per step attempt, one trace per work item."""

from roost_otel.tracing import TraceObserver

__all__ = ["TraceObserver"]
