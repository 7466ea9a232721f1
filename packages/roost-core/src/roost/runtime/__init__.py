"""Roost's contract: models, the engine protocol, plugins, settings, stores and backends.

The names below are imported on first use (module ``__getattr__``): ``from roost.runtime
import BadInput`` loads :mod:`roost.runtime.errors` only, not pydantic's models or settings,
so a command that needs neither (``roost --help``) starts without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.runtime.lazy import lazy_exports

if TYPE_CHECKING:
    from roost.runtime.artifacts import FileArtifactStore
    from roost.runtime.backends import BackendFactory, Fault, WorkBackend
    from roost.runtime.children import ChildOutcome, WaitFor
    from roost.runtime.context import StepContext, step_context, use_step_context
    from roost.runtime.engine import Engine, EngineFactory
    from roost.runtime.errors import (
        BackendUnreachable,
        BadInput,
        BrokenEngine,
        ConflictError,
        EngineContractError,
        NotFound,
        PermanentError,
        RedisUnreachable,
        RoostError,
        SettingsError,
        SignalRefused,
        StaleLease,
        StepTimeout,
        UnknownEngine,
    )
    from roost.runtime.hookspecs import hookimpl
    from roost.runtime.models import (
        APPROVAL_SIGNAL,
        ApprovalRequest,
        Artifact,
        Budget,
        ChildOf,
        ErrorInfo,
        EventType,
        Lease,
        LeaseInfo,
        Progress,
        RuntimeEvent,
        Signal,
        Snapshot,
        WorkItem,
        WorkMeta,
        WorkPage,
        WorkState,
        WorkStatus,
    )
    from roost.runtime.plugins import BrokenPlugin, Registry, get_plugin_manager
    from roost.runtime.settings import RoostSettings
    from roost.runtime.stores import ArtifactStore, ArtifactStoreFactory, EventSink, WorkStore

__all__ = [
    "APPROVAL_SIGNAL",
    "ApprovalRequest",
    "Artifact",
    "ArtifactStore",
    "ArtifactStoreFactory",
    "BackendFactory",
    "BackendUnreachable",
    "BadInput",
    "Budget",
    "BrokenEngine",
    "BrokenPlugin",
    "ChildOf",
    "ChildOutcome",
    "ConflictError",
    "Engine",
    "EngineContractError",
    "EngineFactory",
    "ErrorInfo",
    "EventSink",
    "EventType",
    "Fault",
    "FileArtifactStore",
    "Lease",
    "LeaseInfo",
    "NotFound",
    "PermanentError",
    "Progress",
    "RedisUnreachable",
    "Registry",
    "RoostError",
    "RoostSettings",
    "RuntimeEvent",
    "SettingsError",
    "Signal",
    "SignalRefused",
    "Snapshot",
    "StaleLease",
    "StepContext",
    "StepTimeout",
    "UnknownEngine",
    "WaitFor",
    "WorkBackend",
    "WorkItem",
    "WorkMeta",
    "WorkPage",
    "WorkState",
    "WorkStatus",
    "WorkStore",
    "get_plugin_manager",
    "hookimpl",
    "step_context",
    "use_step_context",
]

_MODULE_OF: dict[str, str] = {
    name: f"roost.runtime.{module}"
    for module, names in {
        "artifacts": ("FileArtifactStore",),
        "backends": ("BackendFactory", "Fault", "WorkBackend"),
        "children": ("ChildOutcome", "WaitFor"),
        "context": ("StepContext", "step_context", "use_step_context"),
        "engine": ("Engine", "EngineFactory"),
        "errors": (
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
        ),
        "hookspecs": ("hookimpl",),
        "models": (
            "APPROVAL_SIGNAL",
            "ApprovalRequest",
            "Artifact",
            "Budget",
            "ChildOf",
            "ErrorInfo",
            "EventType",
            "Lease",
            "LeaseInfo",
            "Progress",
            "RuntimeEvent",
            "Signal",
            "Snapshot",
            "WorkItem",
            "WorkMeta",
            "WorkPage",
            "WorkState",
            "WorkStatus",
        ),
        "plugins": ("BrokenPlugin", "Registry", "get_plugin_manager"),
        "settings": ("RoostSettings",),
        "stores": ("ArtifactStore", "ArtifactStoreFactory", "EventSink", "WorkStore"),
    }.items()
    for name in names
}
"""Each name of :data:`__all__` -> the module that defines it."""


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
