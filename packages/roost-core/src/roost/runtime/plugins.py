"""The plugin manager factory and the registry of what plugins registered.

A plugin that fails to load does not take the others down: an entry point whose module
raises on import, or whose hook raises while registering, is recorded as a
:class:`BrokenPlugin` (with its error) and left out; ``roost engines`` shows it, and
asking for an engine it provides raises :class:`~roost.runtime.errors.BrokenEngine`.
Engines of the ``roost.engines`` group are imported lazily; :meth:`Registry.probe` imports
them now and records the ones that fail the same way.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from roost.runtime import hookspecs
from roost.runtime.builtin_plugins import EntryPointEngine, EntryPointEngines, FileArtifacts
from roost.runtime.engine import Engine
from roost.runtime.errors import (
    BadInput,
    BrokenEngine,
    EngineContractError,
    SettingsError,
    UnknownEngine,
)
from roost.runtime.limits import ATTEMPTS
from roost.runtime.urls import redact_url

if TYPE_CHECKING:
    from roost.runtime.backends import BackendFactory, WorkBackend
    from roost.runtime.engine import EngineFactory
    from roost.runtime.observe import StepObserver
    from roost.runtime.settings import RoostSettings
    from roost.runtime.stores import ArtifactStore, ArtifactStoreFactory, EventSink

__all__ = [
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "BrokenPlugin",
    "PluginManager",
    "Registry",
    "get_plugin_manager",
    "source_of",
]

log = logging.getLogger("roost.plugins")

ENTRY_POINT_GROUP = "roost"
DISABLE_AUTOLOAD_ENV = "ROOST_DISABLE_PLUGIN_AUTOLOAD"


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin (or a lazily imported engine) that failed to load.

    Attributes:
        name: the entry point's name: an engine id when ``engine`` is true, else a plugin
            name (which engines it would have registered is not known).
        source: where it comes from (``entry point roost: name = module``).
        error: the exception, as ``Type: message`` on one line.
        engine: whether ``name`` is an engine id.
    """

    name: str
    source: str
    error: str
    engine: bool = False


def describe_error(exc: BaseException) -> str:
    """``ImportError: No module named 'x'``: an exception on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PluginManager(pluggy.PluginManager):
    """Roost's pluggy manager: it also remembers the entry points that failed to load."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.broken: list[BrokenPlugin] = []
        """Entry-point plugins that raised on import, on registration or had unknown hooks."""

    def load_entry_points(self, group: str) -> None:
        """Register every entry point of ``group``; record the ones that fail as broken."""
        for entry_point in entry_points(group=group):
            name = entry_point.name
            if self.get_plugin(name) is not None or self.is_blocked(name):
                continue
            source = f"entry point {group}: {name} = {entry_point.value}"
            try:
                plugin = entry_point.load()
                self.register(plugin, name=name)
            except Exception as exc:  # a third party's import error must not stop the rest
                self.broken.append(BrokenPlugin(name, source, describe_error(exc)))
                continue
            unknown = [c.name for c in self.get_hookcallers(plugin) or [] if not c.has_spec()]
            if unknown:
                self.unregister(plugin)
                error = f"PluginValidationError: unknown hook {', '.join(sorted(unknown))}"
                self.broken.append(BrokenPlugin(name, source, error))


def get_plugin_manager(
    *, plugins: Sequence[object] = (), autoload: bool | None = None
) -> PluginManager:
    """Build a plugin manager: specs, built-ins, ``plugins``, then installed entry points.

    Args:
        plugins: extra plugin objects or modules to register (tests, embedding apps).
        autoload: load setuptools entry points of the groups ``roost`` and ``roost.engines``.
            Default: yes, unless ``ROOST_DISABLE_PLUGIN_AUTOLOAD`` is set.

    Returns:
        A manager whose hooks have all been checked against their specs. Entry points that
        failed to load are left out and listed in its ``broken`` attribute.

    Raises:
        pluggy.PluginValidationError: one of ``plugins`` implements an unknown hook.
    """
    if autoload is None:
        autoload = not os.environ.get(DISABLE_AUTOLOAD_ENV)
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    pm.register(FileArtifacts(), name="roost.builtin.file-artifacts")
    if autoload:
        pm.register(EntryPointEngines(), name="roost.builtin.entry-point-engines")
    for plugin in plugins:
        pm.register(plugin)
    if autoload:
        pm.load_entry_points(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm


def source_of(obj: object) -> str:
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
    """Engines, artifact stores, backends, event sinks and observers that plugins registered.

    ``broken`` holds what failed to load, by name: plugins whose import or registration
    raised, and (after :meth:`probe`) engines whose entry point does not import.
    """

    engines: dict[str, EngineFactory] = field(default_factory=dict[str, "EngineFactory"])
    artifact_stores: dict[str, ArtifactStoreFactory] = field(
        default_factory=dict[str, "ArtifactStoreFactory"]
    )
    backends: dict[str, BackendFactory] = field(default_factory=dict[str, "BackendFactory"])
    """Backend factories by URL scheme (``""``: the default, used when no URL is set)."""
    event_sinks: list[EventSink] = field(default_factory=list["EventSink"])
    observers: list[StepObserver] = field(default_factory=list["StepObserver"])
    broken: dict[str, BrokenPlugin] = field(default_factory=dict[str, BrokenPlugin])

    @classmethod
    def load(cls, pm: pluggy.PluginManager | None = None) -> Registry:
        """Call every registration hook of ``pm`` (default: a fresh manager).

        Each plugin's hook is called on its own: one that raises is recorded in ``broken``
        and registers nothing, and the others go on.

        Raises:
            BadInput: two plugins registered the same engine id or URL scheme.
        """
        pm = pm or get_plugin_manager()
        registry = cls()
        for broken in getattr(pm, "broken", []):
            registry.broken[broken.name] = broken
        for impl in pm.hook.roost_register_engines.get_hookimpls():
            for engine_id, factory in registry._collect(impl):
                registry._add_engine(engine_id, factory)
        for impl in pm.hook.roost_register_artifact_stores.get_hookimpls():
            for scheme, factory in registry._collect(impl):
                if scheme in registry.artifact_stores:
                    raise BadInput(f"artifact store scheme {scheme!r} is registered twice")
                registry.artifact_stores[scheme] = factory
        for impl in pm.hook.roost_register_backends.get_hookimpls():
            for scheme, factory in registry._collect(impl):
                key = str(scheme).lower()
                if key in registry.backends:
                    shown = "the default backend" if not key else f"backend scheme {key!r}"
                    raise BadInput(f"{shown} is registered twice")
                registry.backends[key] = factory
        for impl in pm.hook.roost_register_event_sinks.get_hookimpls():
            registry.event_sinks += [sink for (sink,) in registry._collect(impl)]
        for impl in pm.hook.roost_register_observers.get_hookimpls():
            registry.observers += [obs for (obs,) in registry._collect(impl)]
        return registry

    def _collect(self, impl: pluggy.HookImpl) -> list[tuple[Any, ...]]:
        """Call one plugin's registration hook and return what it registered.

        A hook that raises is recorded in ``broken`` and registers nothing.
        """
        registered: list[tuple[Any, ...]] = []

        def register(*args: Any) -> None:
            registered.append(args)

        kwargs = {"register": register} if "register" in impl.argnames else {}
        try:
            impl.function(**kwargs)
        except Exception as exc:  # a plugin's bug must not stop the others
            name = impl.plugin_name
            self.broken[name] = BrokenPlugin(name, f"plugin {name}", describe_error(exc))
            log.warning("plugin %s failed to register: %s", name, describe_error(exc))
            return []
        return registered

    def _add_engine(self, engine_id: str, factory: EngineFactory) -> None:
        if engine_id in self.engines:
            raise BadInput(
                f"engine {engine_id!r} is registered twice: by "
                f"{source_of(self.engines[engine_id])} and by {source_of(factory)}"
            )
        self.engines[engine_id] = factory

    def probe(self, engine_ids: Iterable[str] | None = None) -> None:
        """Import lazily loaded engines now (all, or ``engine_ids``).

        An engine whose entry point fails to import moves from ``engines`` to ``broken``.
        """
        for engine_id in list(self.engines if engine_ids is None else engine_ids):
            factory = self.engines.get(engine_id)
            if not isinstance(factory, EntryPointEngine):
                continue
            try:
                factory.load()
            except Exception as exc:  # the import of a third party's module
                del self.engines[engine_id]
                error = describe_error(exc)
                self.broken[engine_id] = BrokenPlugin(
                    engine_id, factory.roost_source, error, engine=True
                )

    def require(self, engine_id: str) -> None:
        """Check that ``engine_id`` is registered and loads.

        Raises:
            BrokenEngine: it is installed but failed to load (the message has the error).
            UnknownEngine: nothing is registered under that id; the message lists what is,
                and the plugins that failed to load.
        """
        self.probe([engine_id])
        broken = self.broken.get(engine_id)
        if engine_id not in self.engines and broken is not None:
            raise BrokenEngine(
                f"engine {engine_id!r} is installed but failed to load: {broken.error} "
                f"({broken.source})"
            )
        if engine_id not in self.engines:
            known = ", ".join(sorted(self.engines)) or "none"
            message = f"unknown engine {engine_id!r} (installed: {known})"
            failed = sorted(b.name for b in self.broken.values() if not b.engine)
            if failed:
                message += f"; plugins that failed to load: {', '.join(failed)} (roost engines)"
            raise UnknownEngine(message)

    def build_engine(self, engine_id: str, **kwargs: Any) -> Engine:
        """Build the engine registered as ``engine_id`` and check it keeps the contract.

        Raises:
            UnknownEngine: nothing is registered under that id.
            BrokenEngine: its plugin failed to load.
            EngineContractError: the factory returned something that is not an engine.
        """
        self.require(engine_id)
        engine = self.engines[engine_id](**kwargs)
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

    def backend_factory(self, url: str | None) -> BackendFactory:
        """The backend factory for ``url`` (the value of ``ROOST_REDIS_URL``), checked.

        ``None`` (no URL) picks the default backend. The URL must start with a registered
        scheme and be one its backend can use.

        Raises:
            SettingsError: no backend for the URL's scheme, or the backend refuses the URL;
                one line that names ``ROOST_REDIS_URL`` and shows the URL redacted.
        """
        var = "ROOST_REDIS_URL"
        unloaded = (
            f" ({DISABLE_AUTOLOAD_ENV} is set: installed plugins are not loaded)"
            if os.environ.get(DISABLE_AUTOLOAD_ENV) and not self.backends
            else ""
        )
        if url is None:
            factory = self.backends.get("")
            if factory is None:
                raise SettingsError(
                    f"{var} is not set and no installed backend runs without it: set it, or "
                    f"install a backend plugin{unloaded}"
                )
            return factory
        shown = repr(redact_url(url))
        scheme, sep, _ = url.partition("://")
        factory = self.backends.get(scheme.lower()) if sep else None
        if factory is None:
            names = [f"{name}://" for name in self.backends if name]
            if not names:
                raise SettingsError(f"{var}: {shown}: no backend plugin is installed{unloaded}")
            known = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
            raise SettingsError(f"{var}: {shown} must start with {known}")
        problem = factory.url_problem(url)
        if problem:
            raise SettingsError(f"{var}: {shown} {problem}")
        return factory

    def open_backend(
        self, settings: RoostSettings, *, validate_engines: bool = False
    ) -> WorkBackend:
        """The work backend ``settings`` name (by ``redis_url``'s scheme), not connected.

        Args:
            settings: which backend (``ROOST_REDIS_URL``), namespace, queue...
            validate_engines: make its ``enqueue`` refuse engines this registry lacks.

        Raises:
            SettingsError: see :meth:`backend_factory`.
        """
        factory = self.backend_factory(settings.redis_url)
        return factory.open(settings, registry=self, validate_engines=validate_engines)


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
    limit = getattr(engine, "max_attempts", None)
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not ATTEMPTS.contains(limit)
    ):
        raise EngineContractError(
            f"engine {engine_id!r}: max_attempts must be a whole number "
            f"{ATTEMPTS.describe()}, not {limit!r}"
        )
