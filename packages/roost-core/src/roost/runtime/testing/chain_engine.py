"""The engine the backend conformance suite runs, and the journal it writes.

:class:`ChainEngine` is deterministic and scriptable from the payload, so one engine can
play every part the suite needs: a plain step, a slow one, one that stalls its worker's event
loop, one that raises, one that kills its worker, one that waits for the test to open a gate.
Each committed step appends an entry to ``snapshot.data["trail"]`` (the version it started
from, the worker that ran it, the attempt), so the final snapshot shows which steps were
committed, in which order and by whom.

Every attempt also appends JSON lines to a journal file named in the payload (``start`` when
the step begins, ``end`` when it returns), from whichever process runs it. The journal holds
what the engine *did*; the backend's snapshot and events hold what was *committed*; the suite
compares the two.

Payload keys (all optional except ``journal``):

* ``steps``: how many steps after ``init_snapshot`` (default 1);
* ``delay``: ``next_step_delay_seconds`` after every step but the last (default 0);
* ``plan``: ``{"<version>": [action of attempt 1, action of attempt 2, ...]}``: what the step
  that starts from that snapshot version does; attempts past the list, and versions not in
  the plan, run ``plain``;
* ``journal``: the journal file; ``gates``: the directory of gate files.

Actions: ``plain``; ``sleep:S`` (await S seconds); ``block:S`` (``time.sleep``: the worker's
event loop stalls for S seconds); ``raise`` (``RuntimeError``); ``permanent``
(:class:`~roost.runtime.errors.PermanentError`); ``exit`` (``os._exit(3)``: the worker
process dies mid-step); ``gate:NAME`` (wait until the gate file NAME exists);
``block-until:NAME`` (the same, stalling the event loop meanwhile); ``raise-unless:NAME``
(raise unless the gate file NAME exists).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.runtime.context import step_context
from roost.runtime.errors import BadInput, PermanentError
from roost.runtime.models import Snapshot, WorkItem

__all__ = [
    "CHAIN",
    "CHAIN_OTHER",
    "ChainEngine",
    "Journal",
    "JournalRecord",
    "build_engines",
    "chain_payload",
]

CHAIN = "conformance"
"""The id of the suite's engine."""

CHAIN_OTHER = "conformance-other"
"""A second engine id with the same behaviour, for per-engine delivery."""

GATE_POLL = 0.02
GATE_LIMIT = 120.0


def chain_payload(
    journal: Path,
    gates: Path,
    *,
    steps: int = 1,
    delay: float = 0.0,
    plan: Mapping[int, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Build a :class:`ChainEngine` payload (see the module docstring)."""
    return {
        "steps": steps,
        "delay": delay,
        "plan": {str(v): list(actions) for v, actions in (plan or {}).items()},
        "journal": str(journal),
        "gates": str(gates),
    }


def _action(payload: Mapping[str, Any], version: int, attempt: int) -> str:
    plan: Mapping[str, Sequence[str]] = payload.get("plan") or {}
    actions = plan.get(str(version), ())
    return actions[attempt - 1] if attempt <= len(actions) else "plain"


def _append(path: str, record: Mapping[str, Any]) -> None:
    """Append one JSON line; O_APPEND keeps lines from several processes whole."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _is_open(gate: Path) -> bool:
    return gate.exists()  # one stat call: not worth a thread


async def _pass_gate(gate: Path, *, stall: bool) -> None:
    """Wait until ``gate`` exists; with ``stall``, without yielding to the event loop."""
    deadline = time.monotonic() + GATE_LIMIT
    while not _is_open(gate):
        if time.monotonic() > deadline:
            raise RuntimeError(f"gate {gate.name!r} never opened")
        if stall:
            time.sleep(GATE_POLL)  # noqa: ASYNC251 (stalling the loop is the point)
        else:
            await asyncio.sleep(GATE_POLL)


class ChainEngine:
    """Steps through ``payload["steps"]`` steps, doing what ``payload["plan"]`` says.

    Args:
        engine_id: :data:`CHAIN` or :data:`CHAIN_OTHER`.
        label: the name of the worker that runs it, written in the journal and the trail.
    """

    def __init__(self, engine_id: str = CHAIN, *, label: str = "") -> None:
        """Build the engine (see the class docstring)."""
        self.engine_id = engine_id
        self.label = label

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        """Start with an empty trail."""
        return Snapshot(
            work_id=item.work_id, engine=self.engine_id, step="start", data={"trail": []}
        )

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        """Do the planned action, then add one entry to the trail."""
        ctx = step_context()
        payload = item.payload
        journal = str(payload["journal"])
        action = _action(payload, snapshot.version, ctx.attempt)
        record: dict[str, Any] = {
            "work_id": item.work_id,
            "engine": self.engine_id,
            "version": snapshot.version,
            "attempt": ctx.attempt,
            "epoch": ctx.lease.epoch if ctx.lease is not None else None,
            "worker": ctx.worker_id,
            "label": self.label,
            "pid": os.getpid(),
            "resources": list(item.resources),
            "action": action,
        }
        _append(journal, {**record, "phase": "start", "ts": time.time()})
        await self._act(action, snapshot.version, Path(str(payload.get("gates", "."))))
        trail = [
            *snapshot.data["trail"],
            {
                "v": snapshot.version,
                "worker": ctx.worker_id,
                "label": self.label,
                "attempt": ctx.attempt,
            },
        ]
        steps = int(payload.get("steps", 1))
        finished = len(trail) >= steps
        new = snapshot.model_copy(
            update={
                "data": {**snapshot.data, "trail": trail},
                "step": f"s{len(trail)}",
                "is_finished": finished,
                "next_step_delay_seconds": 0.0 if finished else float(payload.get("delay", 0.0)),
            }
        )
        _append(journal, {**record, "phase": "end", "ts": time.time()})
        return new

    async def _act(self, action: str, version: int, gates: Path) -> None:
        name, _, arg = action.partition(":")
        if name == "plain":
            return
        if name == "sleep":
            await asyncio.sleep(float(arg))
        elif name == "block":
            time.sleep(float(arg))  # noqa: ASYNC251 (stalling the loop is the point)
        elif name == "raise":
            raise RuntimeError(f"step from version {version} failed on purpose")
        elif name == "permanent":
            raise PermanentError(f"step from version {version} cannot succeed")
        elif name == "exit":
            os._exit(3)
        elif name in ("gate", "block-until"):
            await _pass_gate(gates / arg, stall=name == "block-until")
        elif name == "raise-unless":
            if not _is_open(gates / arg):
                raise RuntimeError(f"gate {arg!r} is closed")
        else:
            raise PermanentError(f"unknown action {action!r}")


def build_engines(engine_ids: Sequence[str], *, label: str = "") -> list[ChainEngine]:
    """One :class:`ChainEngine` per id (each must be :data:`CHAIN` or :data:`CHAIN_OTHER`).

    Raises:
        BadInput: an id the suite does not ship.
    """
    for engine_id in engine_ids:
        if engine_id not in (CHAIN, CHAIN_OTHER):
            raise BadInput(f"unknown conformance engine {engine_id!r}")
    return [ChainEngine(engine_id, label=label) for engine_id in engine_ids]


@dataclass(frozen=True)
class JournalRecord:
    """One line of the journal: an attempt starting or ending."""

    phase: str
    work_id: str
    engine: str
    version: int
    attempt: int
    epoch: int | None
    worker: str
    label: str
    pid: int
    resources: tuple[str, ...]
    action: str
    ts: float


class Journal:
    """Reads the journal the engine writes (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        """Read ``path`` (it need not exist yet)."""
        self.path = path

    def records(self, work_id: str | None = None) -> list[JournalRecord]:
        """Every record so far, oldest first, optionally only one item's."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        out: list[JournalRecord] = []
        for line in lines:
            if not line.strip():
                continue
            raw: dict[str, Any] = json.loads(line)
            raw["resources"] = tuple(raw["resources"])
            record = JournalRecord(**raw)
            if work_id is None or record.work_id == work_id:
                out.append(record)
        return out

    def starts(self, work_id: str | None = None, version: int | None = None) -> list[JournalRecord]:
        """The ``start`` records, optionally of one item and one version."""
        return [
            r
            for r in self.records(work_id)
            if r.phase == "start" and (version is None or r.version == version)
        ]

    def ends(self, work_id: str | None = None, version: int | None = None) -> list[JournalRecord]:
        """The ``end`` records, optionally of one item and one version."""
        return [
            r
            for r in self.records(work_id)
            if r.phase == "end" and (version is None or r.version == version)
        ]

    def spans(self) -> list[tuple[JournalRecord, JournalRecord]]:
        """(start, end) of every attempt that returned, matched by item, version and worker."""
        ends = {(r.work_id, r.version, r.attempt, r.worker): r for r in self.ends()}
        return [
            (s, ends[key])
            for s in self.starts()
            if (key := (s.work_id, s.version, s.attempt, s.worker)) in ends
        ]
