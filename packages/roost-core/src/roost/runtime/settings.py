"""One settings object, read from ``ROOST_*`` environment variables; flags override it.

Values come, first match wins, from command-line flags, the environment, a ``.env`` file in
the project directory (the one :func:`find_home` picks) and, when ``ROOST_SECRETS_DIR`` names
a directory, files named after the variables in it (Docker and Kubernetes secrets). Parsing is
pydantic-settings'; each field's annotation says how its text is read.

Durations accept plain seconds (``30``, ``0.5``) or a number with a unit (``500ms``,
``30s``, ``5m``, ``2h``, ``7d``). A malformed or out-of-range value (see
:mod:`roost.runtime.limits`) fails at start with one line that names the variable.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from roost.runtime.errors import SettingsError
from roost.runtime.limits import SETTING_RANGES, format_seconds
from roost.runtime.log_choices import LOG_FORMATS, LOG_LEVELS, LogFormat, LogLevel

__all__ = [
    "ENV_PREFIX",
    "ENV_VARS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "MAX_PARTITIONS",
    "RoostSettings",
    "find_home",
    "parse_duration",
    "partitions_problem",
    "read_env",
    "worker_id_problem",
]

ENV_PREFIX = "ROOST_"
SECRETS_DIR_VAR = "ROOST_SECRETS_DIR"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|m|h|d)?\s*$")
HOME_DIR = ".roost"
_KEY_PART = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_WORKER_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")


def parse_duration(text: str | float) -> float:
    """Parse ``"30"``, ``"0.5"``, ``"500ms"``, ``"5m"``, ``"7d"`` into seconds.

    A number (from a flag or the Python API) is taken as seconds.

    Raises:
        ValueError: the text is not a non-negative number with an optional unit.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str):
        raise ValueError(f"not a duration: {text!r}")
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use seconds, or a number with ms/s/m/h/d)")
    value = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(value):
        raise ValueError(f"not a finite duration: {text!r}")
    return value


def _strip(value: Any) -> Any:
    # Spaces around a value are a typo; a newline inside one (a flag with "jobs\n") is not
    # taken for one, and the name checks refuse it. Secrets files lose their final newline
    # where pydantic-settings reads them.
    return value.strip(" \t") if isinstance(value, str) else value


def _whole(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"not a whole number: {value!r}") from None


def _flag(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r} (use 1/0, true/false, yes/no)")


def _path(value: Any) -> Any:
    return Path(value).expanduser() if isinstance(value, str) else value


def _choice(choices: tuple[str, ...]) -> Any:
    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip().lower()
        if text not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return text

    return parse


_GIVEN_ONLY: ContextVar[bool] = ContextVar("roost_settings_given_only", default=False)
"""Set while settings are built from given values only (no environment, .env or secrets)."""

Text = Annotated[str, BeforeValidator(_strip)]
Duration = Annotated[float, BeforeValidator(parse_duration)]
Whole = Annotated[int, BeforeValidator(_whole)]
Flag = Annotated[bool, BeforeValidator(_flag)]
PathSetting = Annotated[Path, BeforeValidator(_path)]


class RoostSettings(BaseSettings):
    """Every knob of a Roost process.

    Build it with :meth:`from_env`; pass keyword overrides for values that came from flags.
    Relative paths are resolved against the current directory when the settings are read.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        frozen=True,
        # A .env file holds other programs' variables too; unknown ROOST_* names in it are
        # ignored like unknown environment variables.
        extra="ignore",
    )

    redis_url: Text | None = None
    """``ROOST_REDIS_URL``. Where the work lives: its scheme picks the backend plugin, which
    checks the rest when the backend is opened. Unset: the default backend (an embedded
    server under ``home``)."""
    queue: Text = "roost"
    """``ROOST_QUEUE``. Workers take work only from their queue."""
    redis_prefix: Text = "roost"
    """``ROOST_REDIS_PREFIX``. First part of every key the backend writes."""
    namespace: Text = "default"
    """``ROOST_NAMESPACE``. Second part of every key; isolates deployments."""
    partitions: Whole | None = None
    """``ROOST_PARTITIONS``. How many partitions a new namespace spreads its work over, a
    power of two (see "Scaling out"). The namespace records its number when it is first
    written and keeps it: a process asking for another number is refused. Unset: the
    namespace's own number (1 for a new one)."""
    home: PathSetting = Path(".roost")
    """``ROOST_HOME``. Project-local directory: embedded server data, artifacts, workspaces.
    Unset, :meth:`from_env` finds it the way git finds a repository (:func:`find_home`)."""
    artifact_root: Text | None = None
    """``ROOST_ARTIFACT_ROOT``. A directory or a store URL; default ``{home}/artifacts``."""
    workspace_root: PathSetting | None = None
    """``ROOST_WORKSPACE_ROOT``. Per-item scratch directories; default ``{home}/workspaces``."""
    lease_ttl: Duration = 30.0
    """``ROOST_LEASE_TTL``. How long a lease lives without renewal (renewed every third)."""
    max_attempts: Whole = 3
    """``ROOST_MAX_ATTEMPTS``. Attempts per step before the item is dead (engine and item
    may set their own)."""
    retry_delay: Duration = 1.0
    """``ROOST_RETRY_DELAY``. Base of the exponential backoff between attempts."""
    retry_max_delay: Duration = 300.0
    """``ROOST_RETRY_MAX_DELAY``. Cap of that backoff."""
    retention: Duration = 7 * 86400.0
    """``ROOST_RETENTION``. How long finished (done, failed, dead, cancelled) work is kept."""
    events_maxlen: Whole = 100_000
    """``ROOST_EVENTS_MAXLEN``. Approximate length cap of the namespace's event stream."""
    history: Whole = 0
    """``ROOST_HISTORY``. Earlier snapshot versions kept per item (0: only the latest)."""
    strict_durability: Flag = False
    """``ROOST_STRICT_DURABILITY``. Wait for each commit and enqueue to reach the AOF on disk."""
    grace_period: Duration = 30.0
    """``ROOST_GRACE_PERIOD``. On stop, how long running steps may take to finish."""
    inline_steps: Whole = 16
    """``ROOST_INLINE_STEPS``. Zero-delay continuations run on the same lease before the
    item goes back through the queue (0: always through the queue)."""
    stuck_after: Duration = 300.0
    """``ROOST_STUCK_AFTER``. A worker whose loops (taking work, renewing leases, recovery,
    heartbeat...) have failed for this long without a pass going through exits non-zero, so
    that its process supervisor restarts it."""
    wait_replicas: Whole = 0
    """``ROOST_WAIT_REPLICAS``. Acknowledge a commit only once this many replicas have it
    (``WAIT``): a failover then cannot lose it (0: the primary alone acknowledges)."""
    worker_id: Text | None = None
    """``ROOST_WORKER_ID`` (``roost worker --worker-id``). A worker's identity: its leases
    are recorded under it. A worker started with the identity of one that died takes that
    one's leases back at once (fenced: the old holder can no longer commit) instead of
    waiting for them to expire; a live worker with the same identity makes it refuse to
    start. Unset: a new identity per process (``host:pid:random``)."""
    heartbeat_timeout: Duration = 5.0
    """``ROOST_HEARTBEAT_TIMEOUT``. A worker beats about once a second (or a fifth of this,
    if shorter); one silent for this long is taken for gone and its leases are handed on,
    without waiting for ``ROOST_LEASE_TTL``, by workers that have beaten without a gap for
    this long themselves (so the backend being away for everyone takes no one's leases)."""
    log_level: Annotated[LogLevel | None, BeforeValidator(_choice(LOG_LEVELS))] = None
    """``ROOST_LOG_LEVEL``. ``debug``, ``info``, ``warning``, ``error`` or ``critical``;
    unset: each command's own (``roost worker`` shows info, other commands errors only)."""
    log_format: Annotated[LogFormat, BeforeValidator(_choice(LOG_FORMATS))] = "text"
    """``ROOST_LOG_FORMAT``. ``text`` (one line per record) or ``json`` (JSON Lines)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags, environment, ``.env``, secrets; only the given values inside :func:`given`."""
        if _GIVEN_ONLY.get():
            return (init_settings,)
        return (init_settings, env_settings, dotenv_settings, file_secret_settings)

    @classmethod
    def given(cls, values: Mapping[str, Any]) -> RoostSettings:
        """Settings from ``values`` (field name -> value or text) and defaults, nothing else.

        Raises:
            pydantic.ValidationError: a value is malformed.
        """
        token = _GIVEN_ONLY.set(True)
        try:
            return cls(**values)
        finally:
            _GIVEN_ONLY.reset(token)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RoostSettings:
        """Read the settings: flags (``overrides``), then the environment, ``.env``, secrets.

        Args:
            environ: read only this mapping instead of the process environment, the ``.env``
                file and the secrets directory (for tests and embedding).
            **overrides: values that win over the environment (from CLI flags); ``None``
                values are ignored.

        Raises:
            SettingsError: a value is malformed; the message names the variable.
        """
        given: dict[str, Any] = {}
        for field, value in overrides.items():
            if field not in cls.model_fields:
                raise SettingsError(f"unknown setting {field!r}")
            if value is not None:
                given[field] = value
        try:
            if environ is None:
                secrets = os.environ.get(SECRETS_DIR_VAR) or None
                if secrets is not None and not Path(secrets).is_dir():
                    raise SettingsError(f"{SECRETS_DIR_VAR}: {secrets!r} is not a directory")
                # pydantic-settings' own arguments, which type checkers do not see on cls
                sources: dict[str, Any] = {
                    "_env_file": find_home().parent / ".env",
                    "_secrets_dir": secrets,
                }
                settings = cls(**sources, **given)
            else:
                found = {f: environ[v] for f, v in ENV_VARS.items() if environ.get(v)}
                settings = cls.given({**found, **given})
        except ValidationError as exc:
            var, message = _problem(exc)
            raise SettingsError(f"{var}: {message}") from None
        if "home" not in settings.model_fields_set:
            settings = settings.model_copy(update={"home": find_home()})
        settings.check()
        return settings.resolved()

    def resolved(self) -> RoostSettings:
        """Return a copy whose relative paths are made absolute against the current dir."""
        update: dict[str, Any] = {"home": self.home.resolve()}
        if self.workspace_root is not None:
            update["workspace_root"] = self.workspace_root.resolve()
        if self.artifact_root is not None and "://" not in self.artifact_root:
            update["artifact_root"] = str(Path(self.artifact_root).expanduser().resolve())
        return self.model_copy(update=update)

    def check(self) -> None:
        """Validate cross-field rules; raise :class:`SettingsError` naming the variable."""
        for field in ("queue", "redis_prefix", "namespace"):
            value = getattr(self, field)
            if not _KEY_PART.fullmatch(value):
                raise SettingsError(
                    f"{ENV_VARS[field]}: {value!r} must be 1-64 characters from A-Z a-z 0-9 _ . -"
                )
        if self.partitions is not None and (problem := partitions_problem(self.partitions)):
            raise SettingsError(f"ROOST_PARTITIONS: {problem}")
        if self.worker_id is not None and (problem := worker_id_problem(self.worker_id)):
            raise SettingsError(f"ROOST_WORKER_ID: {problem}")
        for field, allowed in SETTING_RANGES.items():
            value = getattr(self, field)
            if not allowed.contains(value):
                shown = format_seconds(value) if allowed.seconds else value
                raise SettingsError(f"{ENV_VARS[field]}: must be {allowed.describe()}, not {shown}")

    @property
    def artifact_url(self) -> str:
        """The artifact store location: ``artifact_root`` or ``{home}/artifacts``."""
        return self.artifact_root or str(self.home / "artifacts")

    @property
    def workspaces(self) -> Path:
        """The directory holding per-item workspaces."""
        return self.workspace_root or self.home / "workspaces"


MAX_PARTITIONS = 1024
"""The most partitions a namespace may have (``ROOST_PARTITIONS``)."""


def partitions_problem(value: int) -> str | None:
    """What is wrong with ``value`` as a namespace's number of partitions, or None."""
    if not 1 <= value <= MAX_PARTITIONS or value & (value - 1):
        return f"must be a power of two from 1 to {MAX_PARTITIONS}, not {value}"
    return None


def worker_id_problem(value: str) -> str | None:
    """What is wrong with ``value`` as a worker identity (``ROOST_WORKER_ID``), or None."""
    if _WORKER_ID.fullmatch(value):
        return None
    shown = value if len(value) <= 40 else f"{value[:37]}..."
    return f"{shown!r} must be 1-128 characters from A-Z a-z 0-9 _ . : @ -"


def find_home(start: Path | None = None) -> Path:
    """Where ``ROOST_HOME`` is when it is not set: the project's ``.roost``, found like git.

    From ``start`` (default: the current directory) upwards, the first directory that
    has a ``.roost`` directory gives it; else the first that is a project root (a
    ``pyproject.toml`` with ``[tool.uv.workspace]``, or a ``.git``) gets ``.roost`` there;
    else ``start/.roost``. The search never goes up to the user's home directory or the
    file system root, so every ``roost`` command in one project shares one embedded server
    and its data, from any of its directories.
    """
    here = (start or Path.cwd()).resolve()
    stops = {Path.home().resolve(), Path(here.anchor)}
    for directory in (here, *here.parents):
        if directory in stops and directory != here:
            break
        candidate = directory / HOME_DIR
        if _exists(candidate, directory=True) or _is_project_root(directory):
            return candidate
    return here / HOME_DIR


def _exists(path: Path, *, directory: bool = False) -> bool:
    try:
        return path.is_dir() if directory else path.exists()
    except OSError:  # unreadable: as if absent
        return False


def _is_project_root(directory: Path) -> bool:
    if _exists(directory / ".git"):
        return True
    try:
        with (directory / "pyproject.toml").open("rb") as f:
            project = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return "workspace" in project.get("tool", {}).get("uv", {})


def _problem(exc: ValidationError) -> tuple[str, str]:
    """The first problem of ``exc``: the setting's variable, and what is wrong with it."""
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else "?"
    cause = err.get("ctx", {}).get("error")
    message = str(cause) if err["type"] == "value_error" and cause else err["msg"]
    return ENV_VARS.get(field, field), message


def read_env(field: str, environ: Mapping[str, str] | None = None) -> Any:
    """Parse the one variable of setting ``field`` (``None`` when unset or empty).

    For what must be known before the other settings are read (how to log).

    Raises:
        SettingsError: the value is malformed; the message names the variable.
    """
    var = ENV_VARS[field]
    raw = (os.environ if environ is None else environ).get(var)
    if raw is None or raw == "":
        return None
    try:
        return getattr(RoostSettings.given({field: raw}), field)
    except ValidationError as exc:
        raise SettingsError(f"{var}: {_problem(exc)[1]}") from None


ENV_VARS: dict[str, str] = {
    name: f"{ENV_PREFIX}{name.upper()}" for name in RoostSettings.model_fields
}
"""Setting name -> its environment variable."""
