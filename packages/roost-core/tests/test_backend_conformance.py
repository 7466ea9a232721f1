"""The backend conformance suite's own parts: its engine, journal, worker process, mechanics.

The suite itself runs against Redis in packages/roost-redis/tests/test_conformance.py; these
tests need no backend: the worker process runs a fake store that only waits for SIGTERM.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from roost.runtime import PermanentError
from roost.runtime.errors import BadInput
from roost.runtime.testing import EngineRunner
from roost.runtime.testing.backend_conformance import (
    CAPABILITY_ATTRIBUTE,
    REQUIRED,
    BackendConformance,
    Capability,
    ConformanceSuite,
    Scenario,
)
from roost.runtime.testing.chain_engine import (
    CHAIN,
    CHAIN_OTHER,
    ChainEngine,
    Journal,
    build_engines,
    chain_payload,
)
from roost.runtime.testing.processes import WorkerPool, WorkerProcess, process_state
from roost.runtime.testing.worker import load_callable

FAKE_STORE = '''
import asyncio, os, signal, sys

class FakeStore:
    """Runs no steps: reports what it was given, then waits for SIGTERM."""

    async def __aenter__(self):
        if os.environ.get("FAKE_FAIL"):
            raise RuntimeError("the fake store cannot open")
        return self

    async def __aexit__(self, *exc):
        return None

    async def run_worker(self, engines, *, concurrency):
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        names = ",".join(e.engine_id for e in engines)
        label = engines[0].label
        mark = os.environ.get("FAKE_MARK", "")
        print(f"running {names} x{concurrency} as {label} mark={mark}", file=sys.stderr, flush=True)
        await stop.wait()

NOT_CALLABLE = 42
'''


@pytest.fixture
def fake_store(tmp_path: Path) -> str:
    path = tmp_path / "fake_store.py"
    path.write_text(textwrap.dedent(FAKE_STORE))
    return f"{path}:FakeStore"


# -- the chain engine ------------------------------------------------------------------------


def payload(tmp_path: Path, **kwargs: Any) -> dict[str, Any]:
    return chain_payload(tmp_path / "journal.jsonl", tmp_path / "gates", **kwargs)


async def test_chain_engine_records_a_trail_and_a_journal(tmp_path: Path) -> None:
    async with EngineRunner(ChainEngine(label="w3")) as runner:
        result = await runner.run(payload(tmp_path, steps=3, delay=0.25))
    final = result.final
    assert final.is_finished and final.version == 4
    assert [entry["v"] for entry in final.data["trail"]] == [1, 2, 3]
    assert {entry["label"] for entry in final.data["trail"]} == {"w3"}
    assert [s.next_step_delay_seconds for s in result.snapshots] == [0.0, 0.25, 0.25, 0.0]
    journal = Journal(tmp_path / "journal.jsonl")
    assert [(r.phase, r.version) for r in journal.records()] == [
        ("start", 1),
        ("end", 1),
        ("start", 2),
        ("end", 2),
        ("start", 3),
        ("end", 3),
    ]
    assert all(r.label == "w3" and r.action == "plain" and r.attempt == 1 for r in journal.starts())
    assert len(journal.spans()) == 3


async def test_chain_engine_follows_its_plan_by_version_and_attempt(tmp_path: Path) -> None:
    plan = {1: ["raise", "permanent", "plain"], 2: ["raise-unless:open"]}
    (tmp_path / "gates").mkdir()
    async with EngineRunner(ChainEngine()) as runner:
        item = runner.work_item(payload(tmp_path, steps=2, plan=plan))
        first = await runner.init(item)
        with pytest.raises(RuntimeError, match="failed on purpose"):
            await runner.step(first, item, attempt=1)
        with pytest.raises(PermanentError, match="cannot succeed"):
            await runner.step(first, item, attempt=2)
        second = await runner.step(first, item, attempt=3)
        assert second.data["trail"] == [
            {"v": 1, "worker": "roost-harness", "label": "", "attempt": 3}
        ]
        with pytest.raises(RuntimeError, match="gate 'open' is closed"):
            await runner.step(second, item)
        (tmp_path / "gates" / "open").touch()
        assert (await runner.step(second, item)).is_finished
    journal = Journal(tmp_path / "journal.jsonl")
    assert [r.attempt for r in journal.starts(version=1)] == [1, 2, 3]
    assert len(journal.ends(version=1)) == 1


async def test_chain_engine_waits_at_a_gate(tmp_path: Path) -> None:
    (tmp_path / "gates").mkdir()
    async with EngineRunner(ChainEngine()) as runner:
        item = runner.work_item(payload(tmp_path, plan={1: ["gate:go"]}))
        first = await runner.init(item)
        stepping = asyncio.create_task(runner.step(first, item))
        await asyncio.sleep(0.2)
        assert not stepping.done()
        (tmp_path / "gates" / "go").touch()
        assert (await asyncio.wait_for(stepping, 5)).is_finished


async def test_chain_engine_refuses_an_unknown_action(tmp_path: Path) -> None:
    async with EngineRunner(ChainEngine()) as runner:
        with pytest.raises(PermanentError, match="unknown action 'dance'"):
            await runner.run(payload(tmp_path, plan={1: ["dance"]}))


def test_build_engines_knows_only_the_suites_engines() -> None:
    engines = build_engines([CHAIN, CHAIN_OTHER], label="w1")
    assert [(e.engine_id, e.label) for e in engines] == [(CHAIN, "w1"), (CHAIN_OTHER, "w1")]
    with pytest.raises(BadInput, match="unknown conformance engine 'watchlist'"):
        build_engines(["watchlist"])


def test_journal_filters_and_pairs_records(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    assert journal.records() == []
    base = {
        "engine": CHAIN,
        "epoch": 1,
        "label": "w0",
        "pid": 1,
        "resources": [],
        "action": "plain",
    }
    lines = [
        {**base, "phase": "start", "work_id": "a", "version": 1, "attempt": 1, "worker": "x"},
        {**base, "phase": "start", "work_id": "b", "version": 1, "attempt": 1, "worker": "x"},
        {**base, "phase": "end", "work_id": "a", "version": 1, "attempt": 1, "worker": "x"},
        {**base, "phase": "start", "work_id": "a", "version": 1, "attempt": 2, "worker": "y"},
    ]
    journal.path.write_text("".join(json.dumps({**r, "ts": 1.0}) + "\n" for r in lines))
    assert [r.work_id for r in journal.starts()] == ["a", "b", "a"]
    assert [r.attempt for r in journal.starts("a", 1)] == [1, 2]
    assert [(s.work_id, e.phase) for s, e in journal.spans()] == [("a", "end")]


# -- the worker process ----------------------------------------------------------------------


async def test_a_worker_process_starts_ready_and_stops_gracefully(
    tmp_path: Path, fake_store: str
) -> None:
    log = tmp_path / "w0.log"
    env = {**os.environ, "FAKE_MARK": "cold"}
    worker = await WorkerProcess.start(
        fake_store, [CHAIN, CHAIN_OTHER], concurrency=3, label="w0", env=env, log=log
    )
    assert worker.alive
    took = await worker.stop()
    assert not worker.alive and took < 10
    assert f"running {CHAIN},{CHAIN_OTHER} x3 as w0 mark=cold" in log.read_text()


async def test_a_pooled_worker_takes_its_orders_and_the_pool_ends_its_spares(
    tmp_path: Path, fake_store: str
) -> None:
    pool = WorkerPool(spares=1)
    try:
        workers = []
        for n in range(2):
            env = {**os.environ, "FAKE_MARK": f"warm{n}"}
            log = tmp_path / f"w{n}.log"
            workers.append(
                await WorkerProcess.start(
                    fake_store, [CHAIN], concurrency=2, label=f"w{n}", env=env, log=log, pool=pool
                )
            )
            assert f"running {CHAIN} x2 as w{n} mark=warm{n}" in log.read_text()
        assert len({w.pid for w in workers}) == 2
        spares = [p for procs in pool._ready.values() for p in procs]  # pyright: ignore[reportPrivateUsage]
        assert len(spares) == 1 and spares[0].poll() is None
        for worker in workers:
            await worker.stop()
    finally:
        pool.close()
    assert spares[0].poll() is not None


async def test_kill_pause_and_resume_signal_the_worker(tmp_path: Path, fake_store: str) -> None:
    worker = await WorkerProcess.start(
        fake_store, [CHAIN], concurrency=1, label="w0", env=dict(os.environ), log=tmp_path / "l"
    )
    await worker.pause()  # returns once the process is stopped
    assert process_state(worker.pid) == "T"
    await worker.resume()
    assert process_state(worker.pid) in ("S", "R")
    await worker.pause()
    await worker.kill()  # a paused process dies too
    assert not worker.alive and worker.proc.returncode == -9
    with pytest.raises(AssertionError, match="exited with -9"):
        await worker.stop()


async def test_a_worker_that_cannot_start_says_why(tmp_path: Path, fake_store: str) -> None:
    env = {**os.environ, "FAKE_FAIL": "1"}
    with pytest.raises(RuntimeError, match="the fake store cannot open"):
        await WorkerProcess.start(
            fake_store, [CHAIN], concurrency=1, label="w0", env=env, log=tmp_path / "w0.log"
        )


def test_a_bad_store_is_one_line_and_exit_2(tmp_path: Path, fake_store: str) -> None:
    for store, message in [
        ("no-colon", "--store must be module:attribute, not 'no-colon'"),
        (
            not_callable := fake_store.replace(":FakeStore", ":NOT_CALLABLE"),
            f"{not_callable} is not callable",
        ),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "roost.runtime.testing.worker", "--store", store],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [f"worker: {message}"]


def test_load_callable_takes_modules_and_files(fake_store: str) -> None:
    assert load_callable("roost.runtime.testing.chain_engine:ChainEngine") is ChainEngine
    assert load_callable(fake_store).__name__ == "FakeStore"
    with pytest.raises(BadInput, match="is not callable"):
        load_callable("roost.runtime.testing.chain_engine:CHAIN")


# -- the suite's mechanics -------------------------------------------------------------------


def test_every_capability_but_snapshot_history_is_required() -> None:
    assert set(Capability) - REQUIRED == {Capability.SNAPSHOT_HISTORY}
    assert ConformanceSuite.capabilities == REQUIRED


def suite_tests() -> dict[str, Any]:
    return {
        name: getattr(BackendConformance, name)
        for name in dir(BackendConformance)
        if name.startswith("test_")
    }


def test_every_capability_has_tests_in_one_module_of_its_own() -> None:
    modules: dict[Capability, set[str]] = defaultdict(set)
    for name, test in suite_tests().items():
        capability = getattr(test, CAPABILITY_ATTRIBUTE, None)
        assert isinstance(capability, Capability), name
        modules[capability].add(test.__module__)
    assert set(modules) == set(Capability)
    assert all(len(names) == 1 for names in modules.values()), modules
    assert len({m for names in modules.values() for m in names}) == len(Capability)


def test_suite_tests_take_the_backend_fixture_and_need_no_async_plugin() -> None:
    for name, test in suite_tests().items():
        assert not inspect.iscoroutinefunction(test), name
        assert list(inspect.signature(test).parameters) == ["self", "backend", "tmp_path"], name
        assert test.__doc__, name


class Partial(ConformanceSuite):
    capabilities = frozenset({Capability.FENCING})


def test_undeclared_capabilities_skip_if_optional_and_fail_if_required(tmp_path: Path) -> None:
    async def body(sc: Scenario) -> None:
        raise AssertionError("must not run")

    suite = Partial()
    with pytest.raises(pytest.skip.Exception, match="does not declare snapshot-history"):
        suite.run_scenario(Capability.SNAPSHOT_HISTORY, None, tmp_path, body)  # type: ignore[arg-type]
    with pytest.raises(pytest.fail.Exception, match="must support required recovery"):
        suite.run_scenario(Capability.RECOVERY, None, tmp_path, body)  # type: ignore[arg-type]


async def test_until_returns_the_first_truthy_value_or_names_what_it_waited_for(
    tmp_path: Path,
) -> None:
    sc = Scenario(ConformanceSuite(), None, None, tmp_path)  # type: ignore[arg-type]
    calls: list[int] = []

    async def third_time() -> list[int] | None:
        calls.append(1)
        return calls if len(calls) >= 3 else None

    assert await sc.until(third_time, "three calls") == [1, 1, 1]
    started = time.monotonic()
    with pytest.raises(AssertionError, match="not within 0s: the impossible"):
        await sc.until(lambda: False, "the impossible", timeout=0.1)
    assert time.monotonic() - started < 2
    assert sc.worker_settings(lease_ttl=9)["lease_ttl"] == 9
    assert sc.payload(2, delay=0.5)["journal"] == str(tmp_path / "journal.jsonl")


class RecordingBackend:
    """Records what the scenario asks of it; its workers are only labels."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int, str, dict[str, Any]]] = []

    async def start_worker(
        self, engines: list[str], *, concurrency: int, label: str, **settings: Any
    ) -> Any:
        await asyncio.sleep(0.01)
        self.calls.append((engines, concurrency, label, settings))
        return label


async def test_workers_started_together_get_distinct_labels_and_the_suites_settings(
    tmp_path: Path,
) -> None:
    backend = RecordingBackend()
    sc = Scenario(ConformanceSuite(), backend, None, tmp_path)  # type: ignore[arg-type]
    labels = await asyncio.gather(
        sc.start_worker(concurrency=2), sc.start_worker([CHAIN_OTHER], grace_period=1.0)
    )
    assert sorted(labels) == ["w0", "w1"]  # type: ignore[type-var]
    by_label = {label: (engines, n, s) for engines, n, label, s in backend.calls}
    assert by_label["w0"][:2] == ([CHAIN], 2)
    assert by_label["w1"][0] == [CHAIN_OTHER]
    assert by_label["w1"][2]["grace_period"] == 1.0
    assert by_label["w0"][2]["lease_ttl"] == ConformanceSuite.lease_ttl
