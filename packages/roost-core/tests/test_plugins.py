from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest

from roost.runtime import (
    BrokenEngine,
    EngineContractError,
    Registry,
    RuntimeEvent,
    UnknownEngine,
    get_plugin_manager,
    hookimpl,
)
from roost.runtime.backends import DEFAULT_SCHEME, BackendFactory
from roost.runtime.engine import EngineFactory
from roost.runtime.errors import BadInput, SettingsError
from roost.runtime.models import Snapshot, WorkItem
from roost.runtime.plugins import DISABLE_AUTOLOAD_ENV
from roost.runtime.settings import RoostSettings
from roost.runtime.stores import ArtifactStoreFactory, EventSink


class TinyEngine:
    engine_id = "tiny"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id)

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        return snapshot.model_copy(update={"is_finished": True})


def build_tiny(**kwargs: Any) -> TinyEngine:
    engine = TinyEngine()
    engine.kwargs = kwargs  # type: ignore[attr-defined]
    return engine


def build_other_tiny(**kwargs: Any) -> TinyEngine:
    return TinyEngine()


class EnginePlugin:
    def __init__(self, engine_id: str = "tiny", factory: EngineFactory = build_tiny) -> None:
        self.engine_id = engine_id
        self.factory = factory

    @hookimpl
    def roost_register_engines(self, register: Callable[[str, EngineFactory], None]) -> None:
        register(self.engine_id, self.factory)


@pytest.fixture
def no_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)


def install_fake_distribution(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module_source: str,
    entry_points: str,
) -> str:
    """Put a module and a *.dist-info with entry points on sys.path; return the module name."""
    module = f"fake_roost_plugin_{uuid.uuid4().hex[:12]}"
    site = tmp_path / "site"
    site.mkdir()
    (site / f"{module}.py").write_text(module_source)
    dist_info = site / f"{module}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(entry_points.format(module=module))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, module, raising=False)
    return module


FAKE_PLUGIN = """
from roost.runtime import hookimpl
from roost.runtime.models import Snapshot


class Engine:
    engine_id = "fake-engine"

    async def init_snapshot(self, item):
        return Snapshot(work_id=item.work_id, engine=self.engine_id)

    async def step(self, snapshot, item):
        return snapshot


def build_engine(**kwargs):
    return Engine()


@hookimpl
def roost_register_engines(register):
    register("fake-plugin-engine", build_engine)
"""

FAKE_ENTRY_POINTS = """
[roost]
fake = {module}

[roost.engines]
fake-seed-engine = {module}:build_engine
"""


# -- the manager ------------------------------------------------------------------------------


def test_plugin_manager_registers_builtins() -> None:
    pm = get_plugin_manager(autoload=False)
    assert pm.get_plugin("roost.builtin.file-artifacts") is not None
    assert pm.get_plugin("roost.builtin.entry-point-engines") is None
    registry = Registry.load(pm)
    assert set(registry.artifact_stores) == {"file"}
    assert registry.engines == {}
    pm = get_plugin_manager(autoload=True)
    assert pm.get_plugin("roost.builtin.entry-point-engines") is not None


def test_each_call_builds_a_new_manager() -> None:
    assert get_plugin_manager(autoload=False) is not get_plugin_manager(autoload=False)


def test_entry_points_of_both_groups_are_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_autoload: None
) -> None:
    module = install_fake_distribution(tmp_path, monkeypatch, FAKE_PLUGIN, FAKE_ENTRY_POINTS)
    pm = get_plugin_manager()
    assert pm.get_plugin("fake") is sys.modules[module]
    registry = Registry.load(pm)
    assert {"fake-plugin-engine", "fake-seed-engine"} <= set(registry.engines)
    engine = registry.build_engine("fake-seed-engine")
    assert engine.engine_id == "fake-engine"


@pytest.mark.parametrize("value", ["1", "true"])
def test_disable_autoload_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    install_fake_distribution(tmp_path, monkeypatch, FAKE_PLUGIN, FAKE_ENTRY_POINTS)
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, value)
    pm = get_plugin_manager()
    assert pm.get_plugin("fake") is None
    registry = Registry.load(pm)
    assert "fake-plugin-engine" not in registry.engines
    assert "fake-seed-engine" not in registry.engines
    assert "file" in registry.artifact_stores
    # an explicit argument wins over the environment
    assert "fake-seed-engine" in Registry.load(get_plugin_manager(autoload=True)).engines


def test_misspelled_hookimpl_fails_check_pending() -> None:
    class Misspelled:
        @hookimpl
        def roost_register_engine(self, register: Callable[[str, EngineFactory], None]) -> None:
            raise AssertionError("never called")

    with pytest.raises(pluggy.PluginValidationError, match="roost_register_engine"):
        get_plugin_manager(plugins=[Misspelled()], autoload=False)


def test_misspelled_hookimpl_in_an_entry_point_is_broken_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_autoload: None
) -> None:
    source = (
        "from roost.runtime import hookimpl\n\n"
        "@hookimpl\ndef roost_register_sinks(register):\n    pass\n"
    )
    install_fake_distribution(tmp_path, monkeypatch, source, "[roost]\nbad = {module}\n")
    pm = get_plugin_manager()
    assert pm.get_plugin("bad") is None
    [broken] = [b for b in pm.broken if b.name == "bad"]
    assert "unknown hook roost_register_sinks" in broken.error
    assert "watchlist" in Registry.load(pm).engines  # the healthy plugins still load


def test_wrong_hook_argument_name_fails_registration() -> None:
    class WrongArgument:
        @hookimpl
        def roost_register_engines(self, callback: Callable[[str, EngineFactory], None]) -> None:
            raise AssertionError("never called")

    with pytest.raises(pluggy.PluginValidationError):
        get_plugin_manager(plugins=[WrongArgument()], autoload=False)


# -- one test per hook ------------------------------------------------------------------------


def test_roost_register_engines_hook() -> None:
    registry = Registry.load(get_plugin_manager(plugins=[EnginePlugin()], autoload=False))
    assert registry.engines["tiny"] is build_tiny
    engine = registry.build_engine("tiny", colour="blue")
    assert isinstance(engine, TinyEngine)
    assert engine.kwargs == {"colour": "blue"}  # type: ignore[attr-defined]


def test_roost_register_artifact_stores_hook(tmp_path: Path) -> None:
    opened: list[str] = []

    class MemoryStore:
        def __init__(self, url: str) -> None:
            self.url = url

    def open_mem(url: str) -> Any:
        opened.append(url)
        return MemoryStore(url)

    class StorePlugin:
        @hookimpl
        def roost_register_artifact_stores(
            self, register: Callable[[str, ArtifactStoreFactory], None]
        ) -> None:
            register("mem", open_mem)

    registry = Registry.load(get_plugin_manager(plugins=[StorePlugin()], autoload=False))
    assert set(registry.artifact_stores) == {"file", "mem"}
    store = registry.artifact_store("mem://bucket/x")
    assert isinstance(store, MemoryStore)
    assert opened == ["mem://bucket/x"]
    with pytest.raises(BadInput, match=r"^ROOST_ARTIFACT_ROOT: no artifact store for scheme 's3'"):
        registry.artifact_store("s3://bucket")


class MemoryBackends:
    """A backend factory that records what it opened (no server: the hook is the subject)."""

    def __init__(self) -> None:
        self.opened: list[tuple[str | None, object, bool]] = []

    def url_problem(self, url: str) -> str | None:
        return None if url.partition("://")[2] else "names no place"

    def open(
        self, settings: RoostSettings, *, registry: Any = None, validate_engines: bool = False
    ) -> Any:
        self.opened.append((settings.redis_url, registry, validate_engines))
        return ("backend", settings.redis_url)


class BackendPlugin:
    def __init__(self, factory: MemoryBackends, schemes: tuple[str, ...] = ("", "mem")) -> None:
        self.factory, self.schemes = factory, schemes

    @hookimpl
    def roost_register_backends(self, register: Callable[[str, BackendFactory], None]) -> None:
        for scheme in self.schemes:
            register(scheme, self.factory)


def test_roost_register_backends_hook_picks_the_backend_by_url_scheme() -> None:
    factory = MemoryBackends()
    registry = Registry.load(get_plugin_manager(plugins=[BackendPlugin(factory)], autoload=False))
    assert registry.backends == {DEFAULT_SCHEME: factory, "mem": factory}

    default = RoostSettings.from_env({})
    assert registry.open_backend(default) == ("backend", None)
    named = RoostSettings.from_env({"ROOST_REDIS_URL": "MEM://shelf/1"})
    assert registry.open_backend(named, validate_engines=True) == ("backend", "MEM://shelf/1")
    assert factory.opened == [(None, registry, False), ("MEM://shelf/1", registry, True)]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://user:hunter2@bucket", "ROOST_REDIS_URL: 's3://***@bucket' must start with mem://"),
        ("user:hunter2@mem", "ROOST_REDIS_URL: '***@mem' must start with mem://"),
        ("mem://", "ROOST_REDIS_URL: 'mem://' names no place"),
    ],
)
def test_roost_register_backends_refuses_a_url_in_one_line(url: str, message: str) -> None:
    factory = MemoryBackends()
    registry = Registry.load(get_plugin_manager(plugins=[BackendPlugin(factory)], autoload=False))
    with pytest.raises(SettingsError) as excinfo:
        registry.open_backend(RoostSettings.from_env({"ROOST_REDIS_URL": url}))
    assert str(excinfo.value) == message
    assert factory.opened == []


def test_roost_register_backends_without_a_default_asks_for_a_url() -> None:
    factory = MemoryBackends()
    plugin = BackendPlugin(factory, schemes=("mem",))
    registry = Registry.load(get_plugin_manager(plugins=[plugin], autoload=False))
    with pytest.raises(SettingsError, match=r"^ROOST_REDIS_URL is not set and no installed"):
        registry.backend_factory(None)
    empty = Registry.load(get_plugin_manager(autoload=False))
    with pytest.raises(SettingsError, match=r"'mem://x': no backend plugin is installed$"):
        empty.backend_factory("mem://x")


def test_roost_register_backends_missing_because_autoload_is_off_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    empty = Registry.load(get_plugin_manager())
    assert empty.backends == {}
    with pytest.raises(SettingsError) as excinfo:
        empty.backend_factory(None)
    assert str(excinfo.value).endswith(
        "(ROOST_DISABLE_PLUGIN_AUTOLOAD is set: installed plugins are not loaded)"
    )


def test_duplicate_backend_scheme() -> None:
    one, two = BackendPlugin(MemoryBackends()), BackendPlugin(MemoryBackends(), ("MEM",))
    with pytest.raises(BadInput, match="^backend scheme 'mem' is registered twice$"):
        Registry.load(get_plugin_manager(plugins=[one, two], autoload=False))
    three = BackendPlugin(MemoryBackends(), ("",))
    with pytest.raises(BadInput, match="^the default backend is registered twice$"):
        Registry.load(get_plugin_manager(plugins=[one, three], autoload=False))


async def test_roost_register_event_sinks_hook() -> None:
    received: list[RuntimeEvent] = []

    async def sink(event: RuntimeEvent) -> None:
        received.append(event)

    class SinkPlugin:
        @hookimpl
        def roost_register_event_sinks(self, register: Callable[[EventSink], None]) -> None:
            register(sink)

    registry = Registry.load(get_plugin_manager(plugins=[SinkPlugin()], autoload=False))
    assert registry.event_sinks == [sink]
    event = RuntimeEvent(type="done", work_id="w")
    for registered in registry.event_sinks:
        await registered(event)
    assert received == [event]


def test_roost_register_observers_hook() -> None:
    from roost.runtime.observe import Observers, StepObserver, StepRecord, enqueue_headers

    seen: list[tuple[str, str | None]] = []

    class Tracer(StepObserver):
        def step_started(self, record: StepRecord) -> None:
            seen.append(("start", record.work_id))

        def step_ended(self, record: StepRecord) -> None:
            seen.append(("end", record.outcome))

        def enqueue_headers(self) -> dict[str, str]:
            return {"traceparent": "00-abc"}

    class Broken(StepObserver):
        def step_started(self, record: StepRecord) -> None:
            raise RuntimeError("observer bug")

    tracer = Tracer()

    class ObserverPlugin:
        @hookimpl
        def roost_register_observers(self, register: Callable[[StepObserver], None]) -> None:
            register(tracer)

    registry = Registry.load(get_plugin_manager(plugins=[ObserverPlugin()], autoload=False))
    assert registry.observers == [tracer]
    assert enqueue_headers(registry.observers) == {"traceparent": "00-abc"}
    observers = Observers([Broken(), *registry.observers], "w1")
    first = observers.step_started(work_id="a", engine="e", version=1, attempt=1)
    second = observers.step_started(work_id="a", engine="e", version=2, attempt=1)
    assert first is not None and second is not None and first.worker_id == "w1"
    records = [first, second]
    observers.steps_ended(records, "committed", "hold", upto=1)  # only the init was stored
    assert records == [second] and first.outcome == "committed" and first.detail == "hold"
    observers.steps_ended(records, "retried", "RuntimeError")
    observers.steps_ended([first], "dead")  # a record ends once
    assert records == [] and second.outcome == "retried"
    assert seen == [("start", "a"), ("start", "a"), ("end", "committed"), ("end", "retried")]
    assert Observers([]).step_started(work_id="a", engine="e", version=1, attempt=1) is None


# -- the registry -----------------------------------------------------------------------------


def test_duplicate_engine_ids_name_both_sources() -> None:
    plugins = [EnginePlugin("dup", build_tiny), EnginePlugin("dup", build_other_tiny)]
    with pytest.raises(BadInput, match="registered twice") as excinfo:
        Registry.load(get_plugin_manager(plugins=plugins, autoload=False))
    message = str(excinfo.value)
    assert "'dup'" in message
    assert "build_tiny" in message and "build_other_tiny" in message


def test_duplicate_between_seed_entry_point_and_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_autoload: None
) -> None:
    module = install_fake_distribution(tmp_path, monkeypatch, FAKE_PLUGIN, FAKE_ENTRY_POINTS)
    pm = get_plugin_manager(plugins=[EnginePlugin("fake-seed-engine", build_tiny)])
    with pytest.raises(BadInput) as excinfo:
        Registry.load(pm)
    message = str(excinfo.value)
    assert f"entry point fake-seed-engine = {module}:build_engine" in message
    assert "build_tiny" in message


def test_duplicate_artifact_scheme() -> None:
    class AnotherFile:
        @hookimpl
        def roost_register_artifact_stores(
            self, register: Callable[[str, ArtifactStoreFactory], None]
        ) -> None:
            register("file", lambda url: Any)  # type: ignore[arg-type, return-value]

    with pytest.raises(BadInput, match="'file' is registered twice"):
        Registry.load(get_plugin_manager(plugins=[AnotherFile()], autoload=False))


def test_unknown_engine_lists_registered() -> None:
    registry = Registry.load(get_plugin_manager(plugins=[EnginePlugin()], autoload=False))
    with pytest.raises(UnknownEngine, match=r"unknown engine 'nope' \(installed: tiny\)$"):
        registry.build_engine("nope")
    assert issubclass(UnknownEngine, LookupError)


class SyncStep:
    engine_id = "sync"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        raise NotImplementedError

    def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        raise NotImplementedError


class SyncInit:
    engine_id = "sync-init"

    def init_snapshot(self, item: WorkItem) -> Snapshot:
        raise NotImplementedError

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        raise NotImplementedError


class NoStep:
    engine_id = "no-step"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        raise NotImplementedError


class NoEngineId:
    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        raise NotImplementedError

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        raise NotImplementedError


class TooManyAttempts(TinyEngine):
    max_attempts = 1_000_000


class FloatAttempts(TinyEngine):
    max_attempts = 2.5


@pytest.mark.parametrize(
    ("cls", "match"),
    [
        (TooManyAttempts, "max_attempts must be a whole number between 1 and 1,000, not 1000000"),
        (FloatAttempts, "max_attempts must be a whole number between 1 and 1,000, not 2.5"),
        (SyncStep, "step must be an async method"),
        (SyncInit, "init_snapshot must be an async method"),
        (NoStep, "returned NoStep, which lacks"),
        (NoEngineId, "returned NoEngineId, which lacks"),
        (dict, "returned dict, which lacks"),
    ],
)
def test_build_engine_rejects_non_engines(cls: type, match: str) -> None:
    def factory(**kwargs: Any) -> Any:
        return cls()

    registry = Registry.load(
        get_plugin_manager(plugins=[EnginePlugin("bad", factory)], autoload=False)
    )
    with pytest.raises(EngineContractError, match=match):
        registry.build_engine("bad")


# -- plugins that fail to load ----------------------------------------------------------------

RAISES_ON_IMPORT = """
raise ImportError("needs a library that is not installed")
"""

RAISES_IN_HOOK = """
from roost.runtime import hookimpl


@hookimpl
def roost_register_engines(register):
    register("half-registered", None)
    raise RuntimeError("config file missing")
"""


def test_a_plugin_that_raises_on_import_is_broken_and_the_rest_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_autoload: None
) -> None:
    install_fake_distribution(
        tmp_path, monkeypatch, RAISES_ON_IMPORT, "[roost]\nbroken = {module}\n"
    )
    registry = Registry.load(get_plugin_manager())
    assert "watchlist" in registry.engines
    broken = registry.broken["broken"]
    assert broken.error == "ImportError: needs a library that is not installed"
    assert broken.source.startswith("entry point roost: broken = fake_roost_plugin_")
    assert not broken.engine
    with pytest.raises(UnknownEngine) as excinfo:
        registry.require("nope")
    assert "plugins that failed to load: broken (roost engines)" in str(excinfo.value)


def test_a_seed_style_engine_that_raises_on_import_is_a_broken_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_autoload: None
) -> None:
    install_fake_distribution(
        tmp_path, monkeypatch, RAISES_ON_IMPORT, "[roost.engines]\nbad-engine = {module}:build\n"
    )
    registry = Registry.load(get_plugin_manager())
    assert "bad-engine" in registry.engines  # imported lazily: not known to be broken yet
    registry.probe()
    assert "bad-engine" not in registry.engines and "watchlist" in registry.engines
    assert registry.broken["bad-engine"].engine
    with pytest.raises(
        BrokenEngine,
        match=r"^engine 'bad-engine' is installed but failed to load: "
        r"ImportError: needs a library that is not installed \(entry point ",
    ):
        registry.require("bad-engine")
    fresh = Registry.load(get_plugin_manager())
    with pytest.raises(BrokenEngine):  # build_engine probes too
        fresh.build_engine("bad-engine")
    assert issubclass(BrokenEngine, UnknownEngine)


def test_a_hook_that_raises_registers_nothing_and_the_rest_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_autoload: None
) -> None:
    install_fake_distribution(tmp_path, monkeypatch, RAISES_IN_HOOK, "[roost]\nhalf = {module}\n")
    registry = Registry.load(get_plugin_manager(plugins=[EnginePlugin()]))
    assert "half-registered" not in registry.engines
    assert {"tiny", "watchlist"} <= set(registry.engines)
    assert registry.broken["half"].error == "RuntimeError: config file missing"
