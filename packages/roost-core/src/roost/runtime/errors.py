"""Exceptions shared by every Roost layer."""

from __future__ import annotations

__all__ = [
    "BackendUnreachable",
    "BadInput",
    "BrokenEngine",
    "ConflictError",
    "EngineContractError",
    "NotFound",
    "PermanentError",
    "RedisUnreachable",
    "RoostError",
    "SettingsError",
    "SignalRefused",
    "StaleLease",
    "StepTimeout",
    "UnknownEngine",
]


class RoostError(Exception):
    """Base class of Roost's own errors."""


class BadInput(RoostError, ValueError):
    """The caller passed something Roost cannot accept; the message names it."""


class SettingsError(BadInput):
    """A setting (environment variable or flag) is malformed; the message names it."""


class NotFound(BadInput, LookupError):
    """No such work item, artifact or snapshot version."""


class UnknownEngine(BadInput, LookupError):
    """No engine is registered under that id."""


class BrokenEngine(UnknownEngine):
    """The engine is installed, but its plugin failed to load; the message has the error."""


class SignalRefused(BadInput):
    """The item takes no signal: it is finished or cancelled, or holds too many unconsumed."""


class ConflictError(RoostError):
    """The item is not in a state that allows the operation (retry of a running item...)."""


class StaleLease(RoostError):
    """This worker no longer holds the lease; its commit changed nothing."""


class StepTimeout(RoostError):
    """A step ran longer than its ``step_timeout`` and was cancelled; the attempt failed.

    It is retried like any failure. A step that did not stop when cancelled (it blocks in a
    thread or a C call, or swallows the cancel) is abandoned: the message says so.
    """


class EngineContractError(RoostError, TypeError):
    """An engine returned something the contract does not allow (not a Snapshot, ...)."""


class PermanentError(RoostError):
    """Raise it from ``init_snapshot`` or ``step`` to fail the item at once, without retries.

    For errors a retry cannot fix (an invalid payload, a resource that no longer exists):
    the item goes to ``failed`` with this error as its last error. An operator can still
    ``retry`` it once the cause is fixed.
    """


class BackendUnreachable(RoostError):
    """The backend's server could not be reached (refused, timed out, name not resolved)."""


RedisUnreachable = BackendUnreachable
"""The earlier name of :class:`BackendUnreachable`, kept for compatibility."""
