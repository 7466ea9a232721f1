"""The plugin manager factory and the registry of what plugins registered."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from roost.runtime import hookspecs
from roost.runtime.builtin_plugins import EntryPointEngines, FileArtifacts
from roost.runtime.engine import Engine
from roost.runtime.errors import BadInput, EngineContractError, UnknownEngine

if TYPE_CHECKING:
    from roost.runtime.engine import EngineFactory
    from roost.runtime.stores import ArtifactStore, ArtifactStoreFactory, EventSink

__all__ = ["DISABLE_AUTOLOAD_ENV", "ENTRY_POINT_GROUP", "Registry", "get_plugin_manager"]

log = logging.getLogger("roost.plugins")

ENTRY_POINT_GROUP = "roost"
DISABLE_AUTOLOAD_ENV = "ROOST_DISABLE_PLUGIN_AUTOLOAD"


def get_plugin_manager(
    *, plugins: Sequence[object] = (), autoload: bool | None = None
) -> pluggy.PluginManager:
    """Build a plugin manager: specs, built-ins, ``plugins``, then installed entry points.

    Args:
        plugins: extra plugin objects or modules to register (tests, embedding apps).
        autoload: load setuptools entry points of the groups ``roost`` and ``roost.engines``.
            Default: yes, unless ``ROOST_DISABLE_PLUGIN_AUTOLOAD`` is set.

    Returns:
        A manager whose hooks have all been checked against their specs.
    """
    if autoload is None:
        autoload = not os.environ.get(DISABLE_AUTOLOAD_ENV)
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(FileArtifacts(), name="roost.builtin.file-artifacts")
    if autoload:
        pm.register(EntryPointEngines(), name="roost.builtin.entry-point-engines")
    for plugin in plugins:
        pm.register(plugin)
    if autoload:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm


def _source(obj: object) -> str:
    """Describe where a factory comes from: its ``roost_source``, else ``module.qualname``."""
    explicit = getattr(obj, "roost_source", None)
    if explicit:
        return str(explicit)
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(type(obj), "__qualname__", None)
    if module and qualname:
        return f"{module}.{qualname}"
    return str(module or obj)


@dataclass
class Registry:
    """Engines, artifact stores and event sinks that the plugins registered."""

    engines: dict[str, EngineFactory] = field(default_factory=dict[str, "EngineFactory"])
    artifact_stores: dict[str, ArtifactStoreFactory] = field(
        default_factory=dict[str, "ArtifactStoreFactory"]
    )
    event_sinks: list[EventSink] = field(default_factory=list["EventSink"])

    @classmethod
    def load(cls, pm: pluggy.PluginManager | None = None) -> Registry:
        """Call every registration hook of ``pm`` (default: a fresh manager).

        Raises:
            BadInput: two plugins registered the same engine id or URL scheme.
        """
        pm = pm or get_plugin_manager()
        registry = cls()

        def register_engine(engine_id: str, factory: EngineFactory) -> None:
            if engine_id in registry.engines:
                raise BadInput(
                    f"engine {engine_id!r} is registered twice: by "
                    f"{_source(registry.engines[engine_id])} and by {_source(factory)}"
                )
            registry.engines[engine_id] = factory

        def register_store(scheme: str, factory: ArtifactStoreFactory) -> None:
            if scheme in registry.artifact_stores:
                raise BadInput(f"artifact store scheme {scheme!r} is registered twice")
            registry.artifact_stores[scheme] = factory

        pm.hook.roost_register_engines(register=register_engine)
        pm.hook.roost_register_artifact_stores(register=register_store)
        pm.hook.roost_register_event_sinks(register=registry.event_sinks.append)
        return registry

    def build_engine(self, engine_id: str, **kwargs: Any) -> Engine:
        """Build the engine registered as ``engine_id`` and check it keeps the contract.

        Raises:
            UnknownEngine: nothing is registered under that id.
            EngineContractError: the factory returned something that is not an engine.
        """
        try:
            factory = self.engines[engine_id]
        except KeyError:
            known = ", ".join(sorted(self.engines)) or "none"
            raise UnknownEngine(f"unknown engine {engine_id!r} (registered: {known})") from None
        engine = factory(**kwargs)
        check_engine(engine, engine_id)
        return engine

    def artifact_store(self, url: str) -> ArtifactStore:
        """Open the artifact store for ``url``; a plain path means the ``file`` scheme.

        Raises:
            BadInput: no store is registered for the URL's scheme.
        """
        scheme = url.split("://", 1)[0] if "://" in url else "file"
        try:
            factory = self.artifact_stores[scheme]
        except KeyError:
            known = ", ".join(sorted(self.artifact_stores))
            raise BadInput(
                f"ROOST_ARTIFACT_ROOT: no artifact store for scheme {scheme!r} (known: {known})"
            ) from None
        return factory(url)


def check_engine(engine: object, engine_id: str) -> None:
    """Raise :class:`EngineContractError` unless ``engine`` satisfies the Engine protocol."""
    if not isinstance(engine, Engine):
        raise EngineContractError(
            f"engine {engine_id!r}: build_engine returned {type(engine).__name__}, which lacks "
            "engine_id, init_snapshot or step"
        )
    for name in ("init_snapshot", "step"):
        if not inspect.iscoroutinefunction(getattr(engine, name)):
            raise EngineContractError(f"engine {engine_id!r}: {name} must be an async method")
