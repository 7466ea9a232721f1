from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from roost.runtime.errors import BadInput, SettingsError
from roost.runtime.settings import ENV_VARS, RoostSettings, find_home, parse_duration, read_env

# (variable, raw value, field, expected parsed value); relative paths are checked separately.
VALID: list[tuple[str, str, str, Any]] = [
    ("ROOST_REDIS_URL", " redis://localhost:6380/2 ", "redis_url", "redis://localhost:6380/2"),
    ("ROOST_QUEUE", "jobs", "queue", "jobs"),
    ("ROOST_REDIS_PREFIX", "acme", "redis_prefix", "acme"),
    ("ROOST_NAMESPACE", "staging-1", "namespace", "staging-1"),
    ("ROOST_HOME", "/srv/roost", "home", Path("/srv/roost")),
    ("ROOST_ARTIFACT_ROOT", "s3://bucket/prefix", "artifact_root", "s3://bucket/prefix"),
    ("ROOST_WORKSPACE_ROOT", "/srv/ws", "workspace_root", Path("/srv/ws")),
    ("ROOST_LEASE_TTL", "45s", "lease_ttl", 45.0),
    ("ROOST_MAX_ATTEMPTS", "5", "max_attempts", 5),
    ("ROOST_RETRY_DELAY", "500ms", "retry_delay", 0.5),
    ("ROOST_RETRY_MAX_DELAY", "5m", "retry_max_delay", 300.0),
    ("ROOST_RETENTION", "7d", "retention", 7 * 86400.0),
    ("ROOST_EVENTS_MAXLEN", "1000", "events_maxlen", 1000),
    ("ROOST_HISTORY", "10", "history", 10),
    ("ROOST_WAIT_REPLICAS", "1", "wait_replicas", 1),
    ("ROOST_STRICT_DURABILITY", "yes", "strict_durability", True),
    ("ROOST_GRACE_PERIOD", "2h", "grace_period", 7200.0),
    ("ROOST_INLINE_STEPS", "0", "inline_steps", 0),
    ("ROOST_STUCK_AFTER", "2m", "stuck_after", 120.0),
    ("ROOST_WORKER_ID", " web-1.eu:a@b ", "worker_id", "web-1.eu:a@b"),
    ("ROOST_PARTITIONS", " 16 ", "partitions", 16),
    ("ROOST_HEARTBEAT_TIMEOUT", "3s", "heartbeat_timeout", 3.0),
    ("ROOST_LOG_LEVEL", " DEBUG ", "log_level", "debug"),
    ("ROOST_LOG_FORMAT", "json", "log_format", "json"),
]

INVALID: list[tuple[str, str]] = [
    ("ROOST_QUEUE", "has space"),
    ("ROOST_QUEUE", "   "),
    ("ROOST_REDIS_PREFIX", "a:b"),
    ("ROOST_NAMESPACE", "x" * 65),
    ("ROOST_NAMESPACE", "{tag}"),
    ("ROOST_LEASE_TTL", "-5"),
    ("ROOST_LEASE_TTL", "0"),
    ("ROOST_LEASE_TTL", "0.5"),
    ("ROOST_LEASE_TTL", "soon"),
    ("ROOST_LEASE_TTL", "1e400"),
    ("ROOST_LEASE_TTL", "5 minutes"),
    ("ROOST_MAX_ATTEMPTS", "0"),
    ("ROOST_MAX_ATTEMPTS", "2.5"),
    ("ROOST_RETRY_DELAY", "-1s"),
    ("ROOST_RETRY_DELAY", "0"),
    ("ROOST_RETRY_MAX_DELAY", "nan"),
    ("ROOST_RETENTION", "0d"),
    ("ROOST_EVENTS_MAXLEN", "0"),
    ("ROOST_EVENTS_MAXLEN", "many"),
    ("ROOST_HISTORY", "-1"),
    ("ROOST_WAIT_REPLICAS", "-1"),
    ("ROOST_STRICT_DURABILITY", "maybe"),
    ("ROOST_GRACE_PERIOD", "-30"),
    ("ROOST_INLINE_STEPS", "-1"),
    ("ROOST_STUCK_AFTER", "0"),
    ("ROOST_WAIT_REPLICAS", "17"),
    ("ROOST_WAIT_REPLICAS", "one"),
    ("ROOST_WORKER_ID", "has space"),
    ("ROOST_PARTITIONS", "6"),
    ("ROOST_WORKER_ID", "{tag}"),
    ("ROOST_WORKER_ID", "x" * 129),
    ("ROOST_HEARTBEAT_TIMEOUT", "500ms"),
    ("ROOST_HEARTBEAT_TIMEOUT", "2d"),
    ("ROOST_LOG_LEVEL", "loud"),
    ("ROOST_LOG_FORMAT", "xml"),
    # In form but out of range: refused at start, before anything is written.
    ("ROOST_EVENTS_MAXLEN", str(10**19)),
    ("ROOST_EVENTS_MAXLEN", "1000000001"),
    ("ROOST_LEASE_TTL", "2d"),
    ("ROOST_MAX_ATTEMPTS", "1001"),
    ("ROOST_RETRY_DELAY", "366d"),
    ("ROOST_RETRY_DELAY", "0.0001"),
    ("ROOST_RETRY_MAX_DELAY", "1e300"),
    ("ROOST_RETENTION", "3651d"),
    ("ROOST_HISTORY", "1001"),
    ("ROOST_GRACE_PERIOD", "25h"),
    ("ROOST_INLINE_STEPS", "10001"),
]


def test_every_variable_has_a_valid_and_an_invalid_case() -> None:
    variables = set(ENV_VARS.values())
    assert {var for var, *_ in VALID} == variables
    # every variable with a constrained value has at least one malformed example
    # (ROOST_REDIS_URL is checked by the backend its scheme picks: test_plugins.py)
    unconstrained = {"ROOST_HOME", "ROOST_ARTIFACT_ROOT", "ROOST_WORKSPACE_ROOT", "ROOST_REDIS_URL"}
    assert {var for var, _ in INVALID} == variables - unconstrained


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()  # a project root: the search for .roost stops here
    monkeypatch.chdir(tmp_path)
    settings = RoostSettings.from_env({})
    assert settings.redis_url is None
    assert (settings.queue, settings.redis_prefix, settings.namespace) == (
        "roost",
        "roost",
        "default",
    )
    assert settings.home == tmp_path / ".roost"
    assert settings.artifact_url == str(tmp_path / ".roost" / "artifacts")
    assert settings.workspaces == tmp_path / ".roost" / "workspaces"
    assert settings.lease_ttl == 30.0 and settings.max_attempts == 3


@pytest.mark.parametrize(("var", "raw", "field", "expected"), VALID, ids=[v[0] for v in VALID])
def test_each_variable_is_parsed(var: str, raw: str, field: str, expected: Any) -> None:
    settings = RoostSettings.from_env({var: raw})
    assert getattr(settings, field) == expected


@pytest.mark.parametrize(("var", "raw"), INVALID, ids=[f"{v}={r!r}" for v, r in INVALID])
def test_malformed_values_name_the_variable(var: str, raw: str) -> None:
    with pytest.raises(SettingsError) as excinfo:
        RoostSettings.from_env({var: raw})
    message = str(excinfo.value)
    assert message.startswith(f"{var}: "), message
    assert "\n" not in message
    assert isinstance(excinfo.value, BadInput)


def test_the_backend_url_is_checked_by_its_backend_not_by_the_settings() -> None:
    # The scheme picks a backend plugin, which checks the rest when the backend is opened
    # (Registry.backend_factory); the settings keep the value as given.
    url = "nosuch://user:hunter2@somewhere"
    assert RoostSettings.from_env({"ROOST_REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize(
    ("var", "raw", "message"),
    [
        ("ROOST_EVENTS_MAXLEN", "1000000001", "must be between 1 and 1,000,000,000, not"),
        ("ROOST_LEASE_TTL", "2d", "must be between 1s and 1d, not 2d"),
        ("ROOST_RETENTION", "1e300", "must be between 1s and 3650d, not 1e+300s"),
    ],
)
def test_out_of_range_values_say_the_range(var: str, raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"^{var}: {re.escape(message)}"):
        RoostSettings.from_env({var: raw})


def test_the_largest_values_in_range_are_accepted() -> None:
    settings = RoostSettings.from_env(
        {
            "ROOST_EVENTS_MAXLEN": "1000000000",
            "ROOST_LEASE_TTL": "1d",
            "ROOST_RETENTION": "3650d",
            "ROOST_RETRY_MAX_DELAY": "365d",
            "ROOST_MAX_ATTEMPTS": "1000",
        }
    )
    assert settings.events_maxlen == 1_000_000_000 and settings.max_attempts == 1000


def test_empty_values_are_ignored() -> None:
    settings = RoostSettings.from_env({"ROOST_QUEUE": "", "ROOST_LEASE_TTL": ""})
    assert settings.queue == "roost"
    assert settings.lease_ttl == 30.0


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("on", True), ("0", False), ("OFF", False)]
)
def test_booleans(raw: str, expected: bool) -> None:
    settings = RoostSettings.from_env({"ROOST_STRICT_DURABILITY": raw})
    assert settings.strict_durability is expected


def test_relative_paths_are_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = RoostSettings.from_env(
        {
            "ROOST_HOME": "state",
            "ROOST_ARTIFACT_ROOT": "out/artifacts",
            "ROOST_WORKSPACE_ROOT": "ws",
        }
    )
    assert settings.home == tmp_path / "state"
    assert settings.artifact_root == str(tmp_path / "out" / "artifacts")
    assert settings.artifact_url == settings.artifact_root
    assert settings.workspaces == tmp_path / "ws"
    url = RoostSettings.from_env({"ROOST_ARTIFACT_ROOT": "file:///data/a"})
    assert url.artifact_root == "file:///data/a"


def test_overrides_win_and_none_is_ignored() -> None:
    env = {"ROOST_QUEUE": "from-env", "ROOST_NAMESPACE": "env-ns"}
    settings = RoostSettings.from_env(env, queue="from-flag", namespace=None)
    assert settings.queue == "from-flag"
    assert settings.namespace == "env-ns"


def test_bad_overrides_name_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^unknown setting 'nope'"):
        RoostSettings.from_env({}, nope=1)
    with pytest.raises(SettingsError, match=r"^ROOST_LEASE_TTL: "):
        RoostSettings.from_env({}, lease_ttl="not a number")
    with pytest.raises(SettingsError, match=r"^ROOST_LEASE_TTL: "):
        RoostSettings.from_env({}, lease_ttl=0)
    with pytest.raises(SettingsError, match=r"^ROOST_QUEUE: "):
        RoostSettings.from_env({}, queue="jobs\n")


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOST_NAMESPACE", "from-os")
    assert RoostSettings.from_env().namespace == "from-os"


def test_a_given_environment_is_the_only_one_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOST_NAMESPACE", "from-os")
    monkeypatch.setenv("ROOST_LEASE_TTL", "not a duration")
    assert RoostSettings.from_env({}).namespace == "default"
    assert RoostSettings.from_env({"ROOST_NAMESPACE": "given"}).namespace == "given"
    # read_env reads one variable: another's bad value is not its problem
    monkeypatch.setenv("ROOST_LOG_LEVEL", " Debug ")
    assert read_env("log_level") == "debug"
    monkeypatch.setenv("ROOST_LOG_LEVEL", "loud")
    with pytest.raises(SettingsError, match=r"^ROOST_LOG_LEVEL: 'loud' is not one of debug"):
        read_env("log_level")


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory (a git root) as the current directory, with no ROOST_* set."""
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("ROOST_SECRETS_DIR", raising=False)
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_dotenv_in_the_project_directory_is_read_from_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path, monkeypatch)
    (root / ".env").write_text(
        "# other programs' variables live here too\n"
        "OPENAI_API_KEY=sk-not-ours\n"
        "ROOST_NAMESPACE=from-dotenv\n"
        "ROOST_LEASE_TTL=45s\n"
        "ROOST_NOT_A_SETTING=1\n"
    )
    (root / "plugins" / "deep").mkdir(parents=True)
    monkeypatch.chdir(root / "plugins" / "deep")
    settings = RoostSettings.from_env()
    assert (settings.namespace, settings.lease_ttl) == ("from-dotenv", 45.0)
    assert settings.home == root / ".roost"
    # the environment wins over .env, and a flag over both
    monkeypatch.setenv("ROOST_NAMESPACE", "from-env")
    assert RoostSettings.from_env().namespace == "from-env"
    assert RoostSettings.from_env(namespace="from-flag").namespace == "from-flag"


def test_dotenv_values_are_checked_like_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path, monkeypatch)
    (root / ".env").write_text("ROOST_LEASE_TTL=soon\n")
    with pytest.raises(SettingsError, match=r"^ROOST_LEASE_TTL: not a duration: 'soon'"):
        RoostSettings.from_env()


def test_secrets_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path, monkeypatch)
    secrets = root / "secrets"
    secrets.mkdir()
    (secrets / "ROOST_REDIS_URL").write_text("redis://:hunter2@127.0.0.1:6390/0\n")
    monkeypatch.setenv("ROOST_SECRETS_DIR", str(secrets))
    assert RoostSettings.from_env().redis_url == "redis://:hunter2@127.0.0.1:6390/0"
    monkeypatch.setenv("ROOST_REDIS_URL", "redis://127.0.0.1:6391/0")
    assert RoostSettings.from_env().redis_url == "redis://127.0.0.1:6391/0"
    monkeypatch.setenv("ROOST_SECRETS_DIR", str(root / "missing"))
    with pytest.raises(SettingsError, match=r"^ROOST_SECRETS_DIR: .* is not a directory$"):
        RoostSettings.from_env()


def test_settings_are_frozen() -> None:
    settings = RoostSettings.from_env({})
    with pytest.raises(ValueError):
        settings.queue = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30.0), ("0.5", 0.5), (".5", 0.5), ("500ms", 0.5), (" 30s ", 30.0), ("1e3", 1000.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-1", "1y", "ms", "1.2.3", "inf", "1e999"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def workspace(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["plugins/*"]\n')
    return root


def test_find_home_walks_up_to_the_workspace_root(tmp_path: Path) -> None:
    root = workspace(tmp_path / "proj")
    deep = root / "plugins" / "mine" / "src"
    deep.mkdir(parents=True)
    (root / "plugins" / "mine" / "pyproject.toml").write_text('[project]\nname = "mine"\n')
    assert find_home(deep) == root / ".roost"  # not created, just found
    assert not (root / ".roost").exists()
    assert find_home(root) == root / ".roost"


def test_find_home_prefers_the_nearest_existing_roost_dir(tmp_path: Path) -> None:
    root = workspace(tmp_path / "proj")
    (root / "sub" / ".roost").mkdir(parents=True)
    (root / "sub" / "deeper").mkdir()
    assert find_home(root / "sub" / "deeper") == root / "sub" / ".roost"
    (root / "other").mkdir()
    (root / ".roost").mkdir()
    assert find_home(root / "other") == root / ".roost"


def test_find_home_stops_at_a_git_root(tmp_path: Path) -> None:
    (tmp_path / ".roost").mkdir()  # above the repository: not used
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "a" / "b").mkdir(parents=True)
    assert find_home(repo / "a" / "b") == repo / ".roost"


def test_find_home_never_uses_the_users_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "user"
    (user / ".roost").mkdir(parents=True)
    (user / "scratch").mkdir()
    monkeypatch.setenv("HOME", str(user))
    assert find_home(user / "scratch") == user / "scratch" / ".roost"
    assert find_home(user) == user / ".roost"  # run from the home directory itself


def test_from_env_finds_home_unless_roost_home_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = workspace(tmp_path / "proj")
    (root / "plugins").mkdir()
    monkeypatch.chdir(root / "plugins")
    assert RoostSettings.from_env({}).home == root / ".roost"
    assert RoostSettings.from_env({}).workspaces == root / ".roost" / "workspaces"
    assert RoostSettings.from_env({"ROOST_HOME": "here"}).home == root / "plugins" / "here"
    assert RoostSettings.from_env({}, home=Path("flag")).home == root / "plugins" / "flag"
