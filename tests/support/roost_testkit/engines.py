"""Deterministic engines for runtime tests.

``HashChainEngine``: each step sets ``state = sha256(previous state, work id, version)``, so
an item's final state proves every step ran exactly once and in order. The payload picks a
behaviour per step (``mode`` for every step, or ``modes`` = {"<version>": mode}):

- ``plain``; ``sleep`` (await ``seconds``); ``block`` (time.sleep ``seconds``: stalls the loop;
  with ``gate`` set, until that file exists, for at most ``seconds``); with ``fail_times``
  set, ``sleep`` and ``block`` apply only to the first attempts too;
- ``raise`` (raise on the first ``fail_times`` attempts, every attempt when it is absent);
- ``exit`` (``os._exit(3)`` on the first ``fail_times`` attempts: kills the worker);
- ``escape`` (raise the ``BaseException`` named by ``exception``: ``SystemExit``,
  ``KeyboardInterrupt``, ``GeneratorExit``, ``CancelledError`` or ``BaseException``);
- ``thread`` (``asyncio.to_thread(time.sleep, seconds)``: a step that cannot be cancelled);
- ``swallow`` (sleep ``seconds`` and swallow every cancellation meanwhile);
- ``oversize`` (puts ``size`` bytes in the snapshot);

and ``init: "escape"`` makes ``init_snapshot`` raise ``exception`` too.

Every attempt appends one JSON line to ``$ROOST_TEST_LOG`` (if set): item, version it started
from, lease epoch, worker pid, attempt, start and end times, and ``committed`` is left to the
runtime's own records.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from typing import Any

from roost.runtime import Snapshot, WorkItem, step_context


def stall(seconds: float, gate: str | None) -> None:
    """Block the event loop for ``seconds``, or until the file ``gate`` exists (at most that)."""
    if gate is None:
        time.sleep(seconds)  # noqa: ASYNC251 (stalling the loop is the point)
        return
    end = time.monotonic() + seconds
    while not os.path.exists(gate) and time.monotonic() < end:
        time.sleep(0.02)  # noqa: ASYNC251


def chain_seed(work_id: str) -> str:
    return hashlib.sha256(work_id.encode()).hexdigest()


def chain_next(state: str, work_id: str, version: int) -> str:
    return hashlib.sha256(f"{state}:{work_id}:{version}".encode()).hexdigest()


def expected_state(work_id: str, steps: int) -> str:
    """The state after ``steps`` steps (the first step starts from version 1)."""
    state = chain_seed(work_id)
    for version in range(1, steps + 1):
        state = chain_next(state, work_id, version)
    return state


def log_attempt(record: dict[str, Any]) -> None:
    path = os.environ.get("ROOST_TEST_LOG")
    if not path:
        return
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    try:
        with open(path) as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []


ESCAPES: dict[str, type[BaseException]] = {
    "SystemExit": SystemExit,
    "KeyboardInterrupt": KeyboardInterrupt,
    "GeneratorExit": GeneratorExit,
    "CancelledError": asyncio.CancelledError,
    "BaseException": BaseException,
}


async def swallow_cancellation(seconds: float) -> None:
    """Sleep ``seconds`` of wall time, ignoring every cancel (a misbehaving engine)."""
    until = time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0:
        try:
            await asyncio.sleep(left)
        except asyncio.CancelledError:
            pass


class HashChainEngine:
    engine_id = "hashchain"

    def __init__(self, max_attempts: int | None = None, engine_id: str | None = None) -> None:
        if max_attempts is not None:
            self.max_attempts = max_attempts
        if engine_id is not None:
            self.engine_id = engine_id  # the same engine under another id (mixed fleets)

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        if item.payload.get("init") == "escape":
            raise ESCAPES[str(item.payload.get("exception", "SystemExit"))]("escaped from init")
        return Snapshot(
            work_id=item.work_id,
            engine=self.engine_id,
            step="start",
            data={"state": chain_seed(item.work_id), "done": 0},
        )

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        ctx = step_context()
        payload = item.payload
        modes: dict[str, str] = payload.get("modes", {})
        mode = modes.get(str(snapshot.version), payload.get("mode", "plain"))
        record: dict[str, Any] = {
            "work_id": item.work_id,
            "version": snapshot.version,
            "epoch": ctx.lease.epoch if ctx.lease else 0,
            "pid": os.getpid(),
            "worker": ctx.worker_id,
            "attempt": ctx.attempt,
            "mode": mode,
            "start": time.time(),
        }
        resources = item.resources
        if resources:
            record["resources"] = resources
        log_attempt({**record, "phase": "start"})
        fail_times = payload.get("fail_times")
        failing = fail_times is None or ctx.attempt <= int(fail_times)
        seconds = float(payload.get("seconds", 0.0))
        if mode == "sleep" and failing:
            await asyncio.sleep(seconds)
        elif mode == "block" and failing:
            stall(seconds, payload.get("gate"))
        elif mode == "raise" and failing:
            raise RuntimeError(f"step from version {snapshot.version} failed on purpose")
        elif mode == "exit" and failing:
            os._exit(3)
        elif mode == "escape" and failing:
            raise ESCAPES[str(payload.get("exception", "SystemExit"))]("escaped on purpose")
        elif mode == "thread" and failing:
            await asyncio.to_thread(time.sleep, seconds)
        elif mode == "swallow" and failing:
            await swallow_cancellation(seconds)
        data = dict(snapshot.data)
        data["state"] = chain_next(data["state"], item.work_id, snapshot.version)
        data["done"] = int(data["done"]) + 1
        if mode == "oversize":
            data["blob"] = "x" * int(payload.get("size", 1_000_000))
        steps = int(payload.get("steps", 5))
        new = snapshot.model_copy(
            update={
                "data": data,
                "step": f"s{data['done']}",
                "is_finished": data["done"] >= steps,
                "next_step_delay_seconds": float(payload.get("delay", 0.0)),
            }
        )
        log_attempt({**record, "phase": "end", "end": time.time()})
        return new


def build_engine(**kwargs: Any) -> HashChainEngine:
    return HashChainEngine(**kwargs)
