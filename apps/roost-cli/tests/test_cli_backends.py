"""The `roost` command takes its backend from the roost_register_backends hook, by URL scheme."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import Cli, fake_distribution

import roost.cli
import roost.console

# A backend plugin for the scheme "relay": it serves the work of a Redis URL it reads from
# RELAY_TARGET, and says so in describe(), so a test can tell which backend a command used.
RELAY_PLUGIN = """
import os

from roost.redis.plugin import RedisBackend
from roost.runtime import hookimpl


class Relay(RedisBackend):
    def describe(self) -> str:
        return f"relay to {self.settings.redis_url}"


class RelayBackends:
    def url_problem(self, url):
        return None if url.endswith("/ok") else "must end in /ok"

    def open(self, settings, *, registry=None, validate_engines=False):
        target = settings.model_copy(update={"redis_url": os.environ["RELAY_TARGET"]})
        return Relay(target, registry=registry, validate_engines=validate_engines)


@hookimpl
def roost_register_backends(register):
    register("relay", RelayBackends())
"""


@pytest.fixture
def relay(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    site = tmp_path / "site"
    fake_distribution(site, RELAY_PLUGIN, "[roost]\nrelay = {module}\n")
    monkeypatch.syspath_prepend(str(site))
    return {"RELAY_TARGET": cli.env["ROOST_REDIS_URL"], "ROOST_REDIS_URL": "relay://here/ok"}


def test_a_url_scheme_picks_the_backend_its_plugin_registered(
    cli: Cli, relay: dict[str, str]
) -> None:
    listed = cli("list", "-v", env=relay)
    assert listed.code == 0, listed.stderr
    target = relay["RELAY_TARGET"]
    assert listed.stderr.splitlines()[0].startswith(f"roost: redis relay to {target}; ")
    enqueued = cli("enqueue", "--engine", "watchlist", "--payload", "{}", env=relay)
    assert enqueued.code == 0, enqueued.stderr
    work_id = enqueued.stdout.strip()
    # The item is where the relay put it: on the target server, read without the relay.
    shown = cli("status", work_id)
    assert shown.code == 0 and json.loads(shown.stdout)["meta"]["work_id"] == work_id


def test_a_url_the_backend_refuses_is_one_line_and_exit_2(cli: Cli, relay: dict[str, str]) -> None:
    before = cli.counts()
    result = cli("--redis-url", "relay://here/no", "enqueue", "--engine", "watchlist", env=relay)
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == ["error: --redis-url: 'relay://here/no' must end in /ok"]
    unknown = cli("list", env={**relay, "ROOST_REDIS_URL": "nowhere://x"})
    assert unknown.code == 2
    [line] = unknown.stderr.splitlines()
    assert line.startswith("error: ROOST_REDIS_URL: 'nowhere://x' must start with ")
    assert "relay://, " in line and "redis://, " in line and line.endswith(" or redis+cluster://")
    assert cli.counts() == before


@pytest.mark.parametrize("package", [roost.cli, roost.console], ids=["cli", "console"])
def test_the_apps_never_name_the_redis_facade(package: object) -> None:
    root = Path(getattr(package, "__file__", "")).parent
    sources = sorted(root.rglob("*.py"))
    assert sources
    assert [str(p) for p in sources if "RedisSwarm" in p.read_text()] == []
