"""Roost's contract: models, the engine protocol, plugins, settings and stores."""

from roost.runtime.artifacts import FileArtifactStore
from roost.runtime.children import ChildOutcome, WaitFor
from roost.runtime.context import StepContext, step_context, use_step_context
from roost.runtime.engine import Engine, EngineFactory
from roost.runtime.errors import (
    BadInput,
    BrokenEngine,
    ConflictError,
    EngineContractError,
    NotFound,
    PermanentError,
    RedisUnreachable,
    RoostError,
    SettingsError,
    StaleLease,
    UnknownEngine,
)
from roost.runtime.hookspecs import hookimpl
from roost.runtime.models import (
    Artifact,
    ChildOf,
    ErrorInfo,
    EventType,
    Lease,
    LeaseInfo,
    Progress,
    RuntimeEvent,
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
    "Artifact",
    "ArtifactStore",
    "ArtifactStoreFactory",
    "BadInput",
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
    "Snapshot",
    "StaleLease",
    "StepContext",
    "UnknownEngine",
    "WaitFor",
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
