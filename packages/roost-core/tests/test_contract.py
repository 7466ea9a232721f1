from __future__ import annotations

import json

import pytest

from roost.runtime.contract import (
    accept_init,
    accept_step,
    fresh_copy,
    snapshot_from_json,
    snapshot_to_json,
)
from roost.runtime.errors import EngineContractError
from roost.runtime.models import Artifact, Snapshot, WorkItem


@pytest.fixture
def item() -> WorkItem:
    return WorkItem(engine="my-engine", payload={"task": "ship it"})


def snap(item: WorkItem, **fields: object) -> Snapshot:
    return Snapshot(work_id=item.work_id, engine=item.engine, **fields)  # type: ignore[arg-type]


def test_accept_init_sets_version_one_and_copies(item: WorkItem) -> None:
    result = snap(item, version=7, data={"nested": {"list": [1, 2]}})
    accepted = accept_init(result, item)
    assert accepted.version == 1
    assert accepted.data == result.data
    assert accepted is not result
    assert accepted.data["nested"] is not result.data["nested"]
    assert result.version == 7  # the engine's object is left alone


def test_accept_step_sets_next_version(item: WorkItem) -> None:
    previous = accept_init(snap(item), item)
    nxt = previous.model_copy(update={"step": "two", "version": 99})
    accepted = accept_step(nxt, previous, item)
    assert accepted.version == previous.version + 1 == 2
    assert accepted.step == "two"
    third = accept_step(accepted.model_copy(), accepted, item)
    assert third.version == 3


def test_not_a_snapshot(item: WorkItem) -> None:
    with pytest.raises(EngineContractError, match=r"init_snapshot returned dict, not a Snapshot"):
        accept_init({"work_id": item.work_id, "engine": item.engine}, item)
    with pytest.raises(EngineContractError, match="forget to return"):
        accept_init(None, item)
    previous = accept_init(snap(item), item)
    with pytest.raises(EngineContractError, match="step from version 1"):
        accept_step("done", previous, item)


async def test_unawaited_coroutine_gets_a_hint(item: WorkItem) -> None:
    async def init() -> Snapshot:
        return snap(item)

    coro = init()
    try:
        with pytest.raises(EngineContractError, match="forget an await"):
            accept_init(coro, item)
    finally:
        coro.close()


def test_contract_error_is_a_type_error() -> None:
    assert issubclass(EngineContractError, TypeError)


def test_changed_work_id_or_engine(item: WorkItem) -> None:
    other = WorkItem(engine="other-engine")
    with pytest.raises(EngineContractError, match=f"work_id {other.work_id!r}"):
        accept_init(Snapshot(work_id=other.work_id, engine=item.engine), item)
    with pytest.raises(EngineContractError, match="engine 'other-engine', expected 'my-engine'"):
        accept_init(Snapshot(work_id=item.work_id, engine="other-engine"), item)
    previous = accept_init(snap(item), item)
    moved = previous.model_copy()
    moved.work_id = "elsewhere"
    with pytest.raises(EngineContractError, match="expected"):
        accept_step(moved, previous, item)
    renamed = previous.model_copy()
    renamed.engine = "renamed"
    with pytest.raises(EngineContractError, match="engine 'renamed'"):
        accept_step(renamed, previous, item)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("next_step_delay_seconds", -1.0),
        ("next_step_delay_seconds", float("nan")),
        ("next_step_delay_seconds", float("inf")),
        ("next_step_delay_seconds", 1e306),
        ("next_step_delay_seconds", 365 * 86400.0 + 1),
        ("data", "not a dict"),
        ("is_finished", "maybe"),
        ("artifacts", [{"kind": "json"}]),
    ],
)
def test_fields_assigned_after_construction_are_validated(
    item: WorkItem, field: str, value: object
) -> None:
    previous = accept_init(snap(item), item)
    result = previous.model_copy()
    setattr(result, field, value)
    with pytest.raises(EngineContractError, match="invalid snapshot"):
        accept_step(result, previous, item)


@pytest.mark.parametrize(
    "data",
    [{"x": float("nan")}, {"x": [float("inf")]}, {"x": object()}, {"x": {"y": len}}],
    ids=["nan", "inf", "object", "function"],
)
def test_data_that_is_not_json(item: WorkItem, data: dict[str, object]) -> None:
    with pytest.raises(EngineContractError, match="not JSON"):
        accept_init(snap(item, data=data), item)


def test_accepted_snapshot_is_what_json_gives_back(item: WorkItem) -> None:
    accepted = accept_init(snap(item, data={"pair": (1, 2), "n": 1.5}), item)
    assert accepted.data == {"pair": [1, 2], "n": 1.5}


def test_json_round_trip_and_fresh_copy(item: WorkItem) -> None:
    original = snap(
        item,
        step="s",
        data={"a": [1, {"b": None}]},
        version=3,
        next_step_delay_seconds=2.5,
        artifacts=[Artifact(artifact_id="a" * 64, kind="json", metadata={"m": 1})],
    )
    text = snapshot_to_json(original)
    assert json.loads(text)["version"] == 3
    assert snapshot_from_json(text) == original
    assert snapshot_from_json(text.encode()) == original
    copy = fresh_copy(original)
    assert copy == original
    copy.data["a"][1]["b"] = "changed"
    copy.artifacts[0].metadata["m"] = 2
    assert original.data == {"a": [1, {"b": None}]}
    assert original.artifacts[0].metadata == {"m": 1}


def test_snapshot_to_json_refuses_nan(item: WorkItem) -> None:
    with pytest.raises(EngineContractError):
        snapshot_to_json(snap(item, data={"x": float("nan")}))


def test_a_delay_out_of_range_is_a_contract_error_naming_the_range(item: WorkItem) -> None:
    previous = accept_init(snap(item), item)
    result = previous.model_copy()
    result.next_step_delay_seconds = 1e306
    with pytest.raises(EngineContractError) as excinfo:
        accept_step(result, previous, item)
    message = str(excinfo.value)
    assert "\n" not in message
    expected = "next_step_delay_seconds must be between 0 and 365d, not 1e+306 seconds"
    assert message.endswith(expected)
    longest = previous.model_copy()
    longest.next_step_delay_seconds = 365 * 86400.0
    assert accept_step(longest, previous, item).next_step_delay_seconds == 365 * 86400.0


def test_a_lone_surrogate_in_data_is_a_contract_error(item: WorkItem) -> None:
    with pytest.raises(EngineContractError, match="does not read back as JSON"):
        accept_init(snap(item, data={"text": "\ud800"}), item)
