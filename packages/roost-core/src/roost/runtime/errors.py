"""Exceptions shared by every Roost layer."""

from __future__ import annotations

__all__ = [
    "BadInput",
    "ConflictError",
    "EngineContractError",
    "NotFound",
    "RoostError",
    "SettingsError",
    "StaleLease",
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


class ConflictError(RoostError):
    """The item is not in a state that allows the operation (retry of a running item...)."""


class StaleLease(RoostError):
    """This worker no longer holds the lease; its commit changed nothing."""


class EngineContractError(RoostError, TypeError):
    """An engine returned something the contract does not allow (not a Snapshot, ...)."""
