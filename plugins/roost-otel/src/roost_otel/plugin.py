"""Registers the trace observer with Roost (entry point ``roost: otel``).

It uses OpenTelemetry's global tracer provider: configure the SDK (a ``TracerProvider``
and an exporter) in the process, and Roost's workers and enqueuing processes trace.
"""

from __future__ import annotations

from collections.abc import Callable

from roost.runtime import hookimpl
from roost.runtime.observe import StepObserver
from roost_otel.tracing import TraceObserver

__all__ = ["roost_register_observers"]


@hookimpl
def roost_register_observers(register: Callable[[StepObserver], None]) -> None:
    """Register a :class:`TraceObserver` on the global tracer provider."""
    register(TraceObserver())
