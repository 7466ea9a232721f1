"""Roost's plugin hooks (pluggy project name ``roost``).

A plugin is a module or object with functions marked ``@hookimpl``; expose it as a setuptools
entry point in the group ``roost``::

    [project.entry-points.roost]
    my-plugin = "my_package.plugin"

All hooks are synchronous "register" hooks called once when a process builds its plugin
registry; the objects they register do the async work. None is ``firstresult``: every
implementation is called. The simpler seed form, an entry point in the group
``roost.engines`` that names a ``build_engine(**kwargs)`` factory, is served by a built-in
plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from roost.runtime.backends import BackendFactory
    from roost.runtime.engine import EngineFactory
    from roost.runtime.observe import StepObserver
    from roost.runtime.stores import ArtifactStoreFactory, EventSink

__all__ = [
    "hookimpl",
    "hookspec",
    "roost_register_artifact_stores",
    "roost_register_backends",
    "roost_register_engines",
    "roost_register_event_sinks",
    "roost_register_observers",
]

PROJECT_NAME = "roost"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a hook specification of the ``roost`` project."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a hook implementation; re-exported as ``roost.runtime.hookimpl``."""


# -- registration: called when a process builds its registry -------------------------------


@hookspec
def roost_register_engines(register: Callable[[str, EngineFactory], None]) -> None:
    """Register engine factories.

    Call ``register(engine_id, factory)`` once per engine, where ``factory(**kwargs)``
    returns an object satisfying :class:`roost.runtime.Engine`. The factory is called only
    when a worker needs the engine, so registering is cheap. Registering an engine id that
    another plugin registered too is an error naming both.

    Signature: ``roost_register_engines(register: Callable[[str, EngineFactory], None]) -> None``
    """


@hookspec
def roost_register_artifact_stores(
    register: Callable[[str, ArtifactStoreFactory], None],
) -> None:
    """Register artifact stores by URL scheme.

    Call ``register(scheme, factory)``; ``factory(url)`` returns an
    :class:`roost.runtime.ArtifactStore` for ``ROOST_ARTIFACT_ROOT`` values of the form
    ``scheme://...``. The ``file`` scheme is built in (and plain paths mean ``file``).

    Signature: ``roost_register_artifact_stores(register: Callable[[str,
    ArtifactStoreFactory], None]) -> None``
    """


@hookspec
def roost_register_backends(register: Callable[[str, BackendFactory], None]) -> None:
    """Register work backends by URL scheme.

    Call ``register(scheme, factory)`` with a :class:`roost.runtime.backends.BackendFactory`
    for ``ROOST_REDIS_URL`` values of the form ``scheme://...``; the scheme ``""``
    (:data:`roost.runtime.backends.DEFAULT_SCHEME`) makes it the backend used when that
    variable is unset. The CLI and the console reach their backend only through this hook.
    Registering a scheme that another plugin registered too is an error.

    Signature: ``roost_register_backends(register: Callable[[str, BackendFactory], None])
    -> None``
    """


@hookspec
def roost_register_event_sinks(register: Callable[[EventSink], None]) -> None:
    """Register event sinks.

    Call ``register(sink)`` with an ``async sink(event: RuntimeEvent) -> None``. Sinks
    receive exactly the events stored in the backend's event stream (the types of
    :class:`roost.runtime.EventType`), whichever process stored them: a worker's starts,
    commits, failures and releases, recovery's expired leases, and the CLI's or the
    console's enqueues, cancels, retries, replays and signals. Workers deliver them: the
    workers of a namespace that have sinks take turns, one at a time, reading the stream
    and handing each event to every sink, in stream order (so an item's events arrive in
    the order they happened). Delivery is at least once: a worker that dies mid-batch has
    that batch delivered again by the next. The CLI and the console deliver nothing. A sink
    that raises is logged and skipped.

    Signature: ``roost_register_event_sinks(register: Callable[[EventSink], None]) -> None``
    """


@hookspec
def roost_register_observers(register: Callable[[StepObserver], None]) -> None:
    """Register step observers (metrics, tracing).

    Call ``register(observer)`` with a :class:`roost.runtime.observe.StepObserver`. A
    worker tells its observers about every step attempt (start and outcome), lease
    renewals and losses, and recoveries, synchronously and on the step path: an observer
    must only record in memory. Any process asks its observers for headers to store on the
    work it enqueues (:meth:`StepObserver.enqueue_headers`: a trace context, say). An
    observer that raises is logged and skipped.

    Signature: ``roost_register_observers(register: Callable[[StepObserver], None]) -> None``
    """
