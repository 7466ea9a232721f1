"""Built-in plugins: Roost's own behaviour, registered like any other plugin."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from roost.runtime.hookspecs import hookimpl

if TYPE_CHECKING:
    from roost.runtime.engine import Engine, EngineFactory
    from roost.runtime.stores import ArtifactStoreFactory

__all__ = ["ENGINE_ENTRY_POINT_GROUP", "EntryPointEngines", "FileArtifacts"]

ENGINE_ENTRY_POINT_GROUP = "roost.engines"


class FileArtifacts:
    """Registers the content-addressed file artifact store under the ``file`` scheme."""

    @hookimpl
    def roost_register_artifact_stores(
        self, register: Callable[[str, ArtifactStoreFactory], None]
    ) -> None:
        """Register ``file``."""
        from roost.runtime.artifacts import FileArtifactStore

        register("file", FileArtifactStore.from_url)


class EntryPointEngine:
    """A factory that imports its entry point only when first called."""

    def __init__(self, entry_point: EntryPoint) -> None:
        self.entry_point = entry_point
        self.roost_source = f"entry point {entry_point.name} = {entry_point.value}"
        self._factory: EngineFactory | None = None

    def load(self) -> EngineFactory:
        """Import the entry point (once) and return the ``build_engine`` it names.

        Raises:
            Exception: whatever importing the module raises.
        """
        factory = self._factory
        if factory is None:
            factory = self._factory = self.entry_point.load()
        return factory

    def __call__(self, **kwargs: Any) -> Engine:
        """Load the entry point and call the ``build_engine`` it names."""
        return self.load()(**kwargs)


class EntryPointEngines:
    """Serves the seed's ``[project.entry-points."roost.engines"]`` group."""

    @hookimpl
    def roost_register_engines(self, register: Callable[[str, EngineFactory], None]) -> None:
        """Register one lazily-loaded engine per entry point of ``roost.engines``."""
        for entry_point in entry_points(group=ENGINE_ENTRY_POINT_GROUP):
            register(entry_point.name, EntryPointEngine(entry_point))
