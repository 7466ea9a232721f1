from __future__ import annotations

import json
import math
import re
import uuid

import pytest
from pydantic import ValidationError

from roost.runtime.models import (
    Artifact,
    ErrorInfo,
    Lease,
    Snapshot,
    WorkItem,
    WorkMeta,
    WorkState,
    new_work_id,
    validate_name,
)


def test_seed_field_names() -> None:
    assert {
        "work_id",
        "engine",
        "payload",
        "resources",
        "priority",
        "idempotency_key",
    } <= set(WorkItem.model_fields)
    assert {
        "work_id",
        "engine",
        "step",
        "data",
        "version",
        "is_finished",
        "next_step_delay_seconds",
        "artifacts",
        # Waits (docs/signals.md): a snapshot without them is a seed snapshot.
        "wait_for_signals",
        "wait_timeout_seconds",
        "approval_request",
    } == set(Snapshot.model_fields)
    assert {"artifact_id", "kind", "metadata"} <= set(Artifact.model_fields)


def test_seed_status_artifact_shape_parses() -> None:
    """The abridged `roost status` output of the seed README is valid snapshot JSON."""
    snapshot = Snapshot.model_validate(
        {
            "work_id": "w1",
            "engine": "watchlist",
            "version": 4,
            "data": {"checks_completed": 3, "verdict": "reachable"},
            "artifacts": [
                {
                    "kind": "json",
                    "artifact_id": "59212cee" + "0" * 56,
                    "metadata": {"verdict": "reachable", "checks_completed": 3},
                }
            ],
        }
    )
    assert snapshot.artifacts[0].metadata["checks_completed"] == 3


def test_work_item_defaults() -> None:
    item = WorkItem(engine="my-engine", payload={"task": "ship it"})
    assert len(item.work_id) == 32 and int(item.work_id, 16) >= 0
    assert item.work_id != WorkItem(engine="my-engine").work_id
    assert item.resources == [] and item.priority == 0 and item.idempotency_key is None
    assert WorkItem.model_validate_json(item.model_dump_json()) == item
    assert new_work_id() != new_work_id()


def test_a_new_work_id_is_a_version_4_uuid_in_hex() -> None:
    for _ in range(200):
        work_id = new_work_id()
        assert len(work_id) == 32 and work_id == work_id.lower()
        parsed = uuid.UUID(hex=work_id)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert parsed.hex == work_id


def test_snapshot_is_mutable_the_way_the_seed_engine_uses_it() -> None:
    snapshot = Snapshot(work_id="w", engine="my-engine", step="start", data={"payload": {}})
    new_snapshot = snapshot.model_copy()
    new_snapshot.step = "done"
    new_snapshot.is_finished = True
    assert (new_snapshot.step, new_snapshot.is_finished) == ("done", True)
    assert (snapshot.step, snapshot.is_finished) == ("start", False)
    # model_copy() is shallow: nested data is shared. This is why runtimes hand each step
    # a fresh copy parsed from JSON (see roost.runtime.contract).
    new_snapshot.data["payload"]["x"] = 1
    assert snapshot.data["payload"] == {"x": 1}


def test_snapshot_defaults() -> None:
    snapshot = Snapshot(work_id="w", engine="e")
    assert snapshot.step == "start"
    assert snapshot.version == 0
    assert snapshot.is_finished is False
    assert snapshot.next_step_delay_seconds == 0.0
    assert snapshot.data == {} and snapshot.artifacts == []
    assert json.loads(snapshot.model_dump_json())["next_step_delay_seconds"] == 0.0


@pytest.mark.parametrize(
    "delay", [-1, -0.001, math.nan, math.inf, -math.inf, 1e306, 365 * 86400 + 0.5]
)
def test_bad_delays_are_rejected(delay: float) -> None:
    with pytest.raises(ValidationError, match="next_step_delay_seconds"):
        Snapshot(work_id="w", engine="e", next_step_delay_seconds=delay)


def test_fractional_delay_is_kept() -> None:
    snapshot = Snapshot(work_id="w", engine="e", next_step_delay_seconds=0.25)
    assert snapshot.next_step_delay_seconds == 0.25


@pytest.mark.parametrize(
    "name", ["domain:example.com", "a", "user@host", "path/to-x_y.z", "9" * 200]
)
def test_valid_names(name: str) -> None:
    assert validate_name("resource", name) == name
    assert WorkItem(engine=name, resources=[name]).resources == [name]


@pytest.mark.parametrize(
    "name", ["", " ", "has space", "-leading", ".dot", "x" * 201, "tab\there", "é", "a\n"]
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(ValueError, match="invalid resource"):
        validate_name("resource", name)
    with pytest.raises(ValidationError, match="invalid engine"):
        WorkItem(engine=name)
    with pytest.raises(ValidationError, match="invalid resource"):
        WorkItem(engine="e", resources=[name])
    with pytest.raises(ValidationError, match="invalid work id"):
        WorkItem(engine="e", work_id=name)


def test_resources_are_sorted_and_unique() -> None:
    assert WorkItem(engine="e", resources=["b:1", "a:2"]).resources == ["a:2", "b:1"]
    with pytest.raises(ValidationError, match="duplicate"):
        WorkItem(engine="e", resources=["a", "a"])


def test_idempotency_key_and_max_attempts_bounds() -> None:
    with pytest.raises(ValidationError):
        WorkItem(engine="e", idempotency_key="")
    with pytest.raises(ValidationError):
        WorkItem(engine="e", idempotency_key="k" * 201)
    with pytest.raises(ValidationError):
        WorkItem(engine="e", max_attempts=0)
    with pytest.raises(ValidationError, match="max_attempts must be between 1 and 1,000"):
        WorkItem(engine="e", max_attempts=1001)
    assert WorkItem(engine="e", idempotency_key="k" * 200, max_attempts=1).max_attempts == 1


@pytest.mark.parametrize("priority", [10**6 + 1, -(10**6) - 1, 10**400])
def test_priority_out_of_range(priority: int) -> None:
    with pytest.raises(ValidationError, match="priority must be between -1,000,000 and 1,000,000"):
        WorkItem(engine="e", priority=priority)
    assert WorkItem(engine="e", priority=10**6).priority == 10**6


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"x": math.nan}, "x is nan"),
        ({"x": [1, math.inf]}, "x[1] is inf"),
        ({"deep": {"er": -math.inf}}, "deep.er is -inf"),
        ({"s": "\ud800"}, "s holds a lone surrogate"),
        ({"o": object()}, "o is a object, which is not JSON-serializable"),
        ({"k": {1: "a"}}, "k has a key that is not a string"),
    ],
)
def test_payload_is_strict_json(payload: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(where)):
        WorkItem(engine="e", payload=payload)


def test_payload_nan_from_json_text_is_refused_too() -> None:
    """pydantic's JSON parser reads NaN; the item must not take it (it would be stored as null)."""
    with pytest.raises(ValidationError, match="x is nan"):
        WorkItem.model_validate_json('{"engine": "e", "payload": {"x": NaN}}')


def test_deep_payloads_do_not_exhaust_the_stack() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(5000):
        child: dict[str, object] = {}
        node["a"] = child
        node = child
    node["x"] = math.nan
    with pytest.raises(ValidationError, match="is nan"):
        WorkItem(engine="e", payload=deep)


def test_lease_is_frozen() -> None:
    lease = Lease(work_id="w", worker_id="wk", token="t", epoch=1, expires_at=1.0)
    with pytest.raises(ValidationError):
        lease.epoch = 2  # type: ignore[misc]


def test_terminal_states() -> None:
    terminal = {s for s in WorkState if s.is_terminal}
    assert terminal == {WorkState.DONE, WorkState.FAILED, WorkState.DEAD, WorkState.CANCELLED}
    assert WorkState("queued") is WorkState.QUEUED
    assert {s for s in WorkState if s.is_failure} == {WorkState.FAILED, WorkState.DEAD}


@pytest.mark.parametrize(
    ("state", "attempts", "error_attempt", "past"),
    [
        ("retrying", 1, 1, False),  # the first attempt failed; waiting for its backoff
        ("queued", 1, 1, False),  # back in the queue for its retry
        ("running", 2, 1, False),  # the retry is running
        ("dead", 3, 3, False),
        ("failed", 1, 1, False),
        ("cancelled", 1, 1, False),
        ("done", 0, 2, True),  # a later attempt succeeded and the item finished
        ("running", 1, 1, True),  # the retry committed; the next step runs inline
        ("queued", 0, 2, True),  # the retry committed; the next step is queued
        ("scheduled", 0, 1, True),  # the retry committed a delayed continuation
        ("running", 1, 2, True),
    ],
)
def test_error_is_past_once_a_later_attempt_succeeded(
    state: str, attempts: int, error_attempt: int, past: bool
) -> None:
    meta = WorkMeta(
        work_id="w",
        engine="e",
        state=WorkState(state),
        attempts=attempts,
        last_error=ErrorInfo(type="ValueError", message="boom", attempt=error_attempt),
    )
    assert meta.error_is_past is past
    assert not WorkMeta(work_id="w", engine="e", state=WorkState.DONE).error_is_past
