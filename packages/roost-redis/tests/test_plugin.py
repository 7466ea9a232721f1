"""The Redis backend as a plugin: found by URL scheme, checks its URLs, keeps WorkBackend."""

from __future__ import annotations

import inspect
import socket
from pathlib import Path

import pytest
from redis.exceptions import ResponseError

from roost.redis import RedisBackend, RedisSwarm
from roost.redis.plugin import FACTORY, REDIS_SCHEMES, swarm_of
from roost.runtime import Registry, RoostSettings, WorkBackend, get_plugin_manager
from roost.runtime.backends import DEFAULT_SCHEME
from roost.runtime.errors import BackendUnreachable, BadInput, RedisUnreachable, SettingsError


@pytest.fixture(scope="module")
def installed() -> Registry:
    """The registry of the installed plugins: roost-redis comes in by its entry point."""
    return Registry.load(get_plugin_manager(autoload=True))


def test_roost_register_backends_hook_registers_redis_by_its_entry_point(
    installed: Registry,
) -> None:
    assert {DEFAULT_SCHEME, *REDIS_SCHEMES} <= set(installed.backends)
    assert all(installed.backends[s] is FACTORY for s in (DEFAULT_SCHEME, *REDIS_SCHEMES))


def test_the_backend_of_each_scheme_is_a_redis_backend(installed: Registry, tmp_path: Path) -> None:
    for url in (None, "redis://127.0.0.1:1/0", "REDISS://127.0.0.1:1", "unix:///tmp/r.sock"):
        settings = RoostSettings.from_env({}, home=tmp_path, redis_url=url)
        backend = installed.open_backend(settings, validate_engines=True)
        assert type(backend) is RedisBackend
        assert isinstance(backend, WorkBackend)
        assert swarm_of(backend) is backend and backend.validate_engines
        assert backend.settings is settings


def test_redis_backend_has_every_member_of_work_backend_with_its_parameters() -> None:
    # pyright checks the types (plugin.FACTORY is declared a BackendFactory); this checks
    # that nothing of the protocol is missing and that parameters keep their names.
    members = {
        name
        for cls in WorkBackend.__mro__
        if cls not in (object,) and cls.__name__ not in ("Protocol", "Generic")
        for name in vars(cls)
        if not name.startswith("_") or name in ("__aenter__", "__aexit__")
    } - {"__annotations__", "__dict__", "__doc__", "__module__", "__weakref__"}
    assert {"enqueue", "status", "events", "explain", "run_worker", "__aenter__"} <= members
    for name in sorted(members):
        assert hasattr(RedisBackend, name) or name in ("settings", "url"), name
        expected = getattr(WorkBackend, name, None)
        actual = getattr(RedisBackend, name, None)
        if inspect.isfunction(expected) and inspect.isfunction(actual):
            want = list(inspect.signature(expected).parameters)
            got = list(inspect.signature(actual).parameters)
            assert got[: len(want)] == want, (name, got, want)


def test_swarm_of_refuses_another_backend() -> None:
    with pytest.raises(BadInput, match="needs the Redis backend"):
        swarm_of(object())


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:26379/mymaster",
        "redis+sentinel://:hunter2@h1:26379,h2:26380,[::1]:26381/svc/2?sentinel_password=x",
        "REDIS+CLUSTER://a:7000,b:7001,c",
        "redis+cluster://user:hunter2@a:7000,b:7001/",
        "rediss://user:hunter2@[::1]:6380/0",
        "unix:///run/redis/redis-server@main.sock?db=1",
    ],
)
def test_sentinel_and_cluster_host_lists_are_accepted(installed: Registry, url: str) -> None:
    assert installed.backend_factory(url) is FACTORY


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://localhost:notaport", "has a bad port (use 1-65535)"),
        ("redis://localhost:99999", "has a bad port (use 1-65535)"),
        ("redis://localhost:0", "has a bad port (use 1-65535)"),
        ("redis://", "names no host"),
        ("unix://", "names no socket path"),
        ("localhost:6379", "must start with redis://"),
        ("redis+cluster://user:hunter2@a:1,,b", "has an empty entry in its host list"),
        ("redis+sentinel://:hunter2@a:1,:2/s", "has an empty host"),
        ("redis+sentinel://:hunter2@a:1,b:x/s", "has a bad port (use 1-65535)"),
        ("redis+cluster://:hunter2@a:65536", "has a bad port (use 1-65535)"),
        ("redis+cluster://a:7²", "has a bad port (use 1-65535)"),
        ("redis+cluster://:hunter2@::1:7000", "has a host it cannot read (IPv6 goes in ["),
        ("redis+cluster://:hunter2@", "names no host"),
        ("redis://:hunter2@a:1,b:2/0", "names several hosts; only redis+sentinel:// and"),
        ("redis://user:hunter2@localhost:0/0", "has a bad port (use 1-65535)"),
        ("redis://user:hunter2@/0", "names no host"),
        (
            "http://user:hunter2@localhost:6379",
            "must start with redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://",
        ),
        ("user:hunter2@localhost:6379", "must start with redis://"),
        # An unencoded '/' in the password ends the host part early: the hint says so.
        ("redis://user:hun/ter2@localhost:6379/0", "percent-encode '/', '?', '#' and '@'"),
        ("redis+sentinel://:hun?ter2@a:1/s", "has an empty host; percent-encode"),
    ],
)
def test_redis_url_errors_name_the_problem_and_never_the_password(
    installed: Registry, url: str, problem: str
) -> None:
    with pytest.raises(SettingsError) as excinfo:
        installed.open_backend(RoostSettings.from_env({"ROOST_REDIS_URL": url}))
    message = str(excinfo.value)
    assert message.startswith("ROOST_REDIS_URL: ") and problem in message, message
    assert "hunter2" not in message and "hun" not in message and "ter2" not in message
    assert "\n" not in message


def test_backend_unreachable_keeps_its_old_name() -> None:
    assert RedisUnreachable is BackendUnreachable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_an_unreachable_server_is_backend_unreachable_and_explained(
    installed: Registry, tmp_path: Path
) -> None:
    url = f"redis://:hunter2@127.0.0.1:{_closed_port()}/0"
    backend = installed.open_backend(RoostSettings.from_env({}, home=tmp_path, redis_url=url))
    with pytest.raises(BackendUnreachable) as excinfo:
        await backend.connect()
    assert "hunter2" not in str(excinfo.value) and "***@127.0.0.1" in str(excinfo.value)
    assert backend.describe() == f"{url.replace(':hunter2@', '***@')} (ROOST_REDIS_URL)"
    assert backend.server_running()  # a URL is taken as running: nothing to start
    refused = ConnectionRefusedError(111, "Connection refused")
    fault = backend.explain(refused)
    assert fault is not None and fault.outage and fault.unreachable
    assert backend.explain(ValueError("not ours")) is None


async def test_the_backend_drives_work_on_a_real_server(
    installed: Registry, redis_url: str, tmp_path: Path
) -> None:
    settings = RoostSettings.from_env({}, home=tmp_path, redis_url=redis_url, namespace="plug")
    async with installed.open_backend(settings) as backend:
        assert isinstance(backend, RedisSwarm)
        await backend.ping()
        work_id = await backend.enqueue("nobody-runs-this", {"n": 1})
        status = await backend.status(work_id)
        assert status.meta.state == "queued" and status.item is not None
        assert status.item.payload == {"n": 1}
        assert backend.describe() == f"{redis_url} (ROOST_REDIS_URL)"
        oom = ResponseError("OOM command not allowed when used memory > 'maxmemory'.")
        fault = backend.explain(oom)
        assert fault is not None and fault.outage and not fault.unreachable
        assert "out of memory" in fault.message
        wrongtype = ResponseError("WRONGTYPE Operation against a key holding the wrong kind")
        fault = backend.explain(wrongtype)
        assert fault is not None and not fault.outage


def test_the_default_backend_describes_and_reports_its_embedded_server(
    installed: Registry, tmp_path: Path
) -> None:
    backend = installed.open_backend(RoostSettings.from_env({}, home=tmp_path))
    assert not backend.server_running()  # finding out starts nothing
    assert backend.describe().startswith("embedded at not running yet (data in ")
    report = backend.manage_server("status")
    assert report.lines() == [f"embedded server: stopped (data {tmp_path / 'redis'})"]
    assert report.to_dict()["redis_url"] is None and report.to_dict()["state"] == "stopped"
    assert not backend.server_running()
