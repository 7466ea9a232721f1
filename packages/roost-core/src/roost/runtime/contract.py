"""The one place that checks what engines return.

Runtimes (the Redis runtime, the in-memory harness in :mod:`roost.runtime.testing`) call
:func:`accept_init` on what ``init_snapshot`` returned and :func:`accept_step` on what
``step`` returned. Both reject a result that is not a :class:`Snapshot`, that belongs to
another work item or engine, or whose fields are invalid (an engine may assign fields after
construction, which pydantic does not validate) or not JSON. They return a new snapshot, parsed
back from its JSON form, with the runtime-owned ``version`` set; whatever version the engine
wrote is ignored.

Runtimes hand every ``step`` a fresh copy parsed from the committed JSON
(:func:`fresh_copy`, or :func:`snapshot_from_json` on the stored text). ``Snapshot.model_copy()``
is shallow, so a step that copies, mutates ``data`` in place and then raises would otherwise
corrupt the snapshot its retry starts from.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pydantic import ValidationError

from roost.runtime.errors import EngineContractError
from roost.runtime.models import Snapshot

if TYPE_CHECKING:
    from roost.runtime.models import WorkItem

__all__ = [
    "accept",
    "accept_init",
    "accept_step",
    "fresh_copy",
    "snapshot_from_json",
    "snapshot_to_json",
]


def _describe(result: object) -> str:
    hint = ""
    if result is None:
        hint = " (did the method forget to return the snapshot?)"
    elif hasattr(result, "__await__"):
        hint = " (an awaitable: did the engine forget an await?)"
    return f"{type(result).__name__}{hint}"


def _first(exc: ValidationError) -> str:
    """The first error of ``exc`` on one line: ``field: message``."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "snapshot"
    message = str(err["msg"]).removeprefix("Value error, ")
    text = message if message.startswith(where) else f"{where}: {message}"
    return " ".join(text.split())


def _encode(snapshot: Snapshot, where: str, version: int | None = None) -> str:
    """Validate ``snapshot``'s current field values and return its compact JSON text.

    One validation, one ``model_dump`` and one ``json.dumps``: this runs for every step.
    The field values are read from the instance's ``__dict__`` (where pydantic keeps them,
    assignments after construction included): ``dict(snapshot)`` costs a failed
    ``keys`` lookup through pydantic's ``__getattr__`` and an iteration per call.
    """
    try:
        checked = Snapshot.model_validate(dict(snapshot.__dict__))
    except ValidationError as exc:
        raise EngineContractError(f"{where} returned an invalid snapshot: {_first(exc)}") from None
    # Fields at their defaults are left out (they read back as the defaults): runtimes
    # keep every finished item's snapshot, so its size is what retention costs.
    plain = checked.model_dump(exclude_defaults=True)
    if version is not None:
        plain["version"] = version
    try:
        return json.dumps(plain, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EngineContractError(
            f"{where} returned a snapshot that is not JSON: {exc}; keep snapshot data to "
            "dicts, lists, strings, finite numbers, booleans and None"
        ) from None


def accept(
    result: object, item: WorkItem, *, version: int, previous: Snapshot | None = None
) -> tuple[Snapshot, str]:
    """Check an engine's result and return it as ``version`` with its JSON text.

    The form runtimes use: the text is what they store, the snapshot (parsed back from
    that text, sharing nothing with the engine's objects) is what the next step gets.

    Args:
        result: what ``init_snapshot`` (``previous`` None) or ``step`` returned.
        item: the work item.
        version: the version the runtime gives the result.
        previous: the snapshot ``step`` started from.

    Raises:
        EngineContractError: see :func:`accept_step`.
    """
    if previous is None:
        where = f"engine {item.engine!r}: init_snapshot"
        work_id, engine = item.work_id, item.engine
    else:
        where = f"engine {item.engine!r}: step from version {previous.version} ({previous.step!r})"
        work_id, engine = previous.work_id, previous.engine
    if not isinstance(result, Snapshot):
        raise EngineContractError(f"{where} returned {_describe(result)}, not a Snapshot")
    if result.work_id != work_id:
        raise EngineContractError(
            f"{where} returned a snapshot for work_id {result.work_id!r}, expected {work_id!r}; "
            "a snapshot belongs to its work item"
        )
    if result.engine != engine:
        raise EngineContractError(
            f"{where} returned a snapshot for engine {result.engine!r}, expected {engine!r}; "
            "set Snapshot.engine to the engine id the item was enqueued with"
        )
    text = _encode(result, where, version)
    try:
        return Snapshot.model_validate_json(text), text
    except ValidationError as exc:  # a lone surrogate in a string, which JSON cannot carry
        raise EngineContractError(
            f"{where} returned a snapshot that does not read back as JSON: {_first(exc)}"
        ) from None


def accept_init(result: object, item: WorkItem) -> Snapshot:
    """Check what ``init_snapshot(item)`` returned and return it as version 1.

    Args:
        result: the engine's return value.
        item: the work item it was called with.

    Returns:
        A new snapshot (parsed from its JSON form) with ``version`` 1.

    Raises:
        EngineContractError: ``result`` is not a :class:`Snapshot`, names another
            ``work_id`` or ``engine`` than ``item``, has invalid fields or is not JSON.
    """
    return accept(result, item, version=1)[0]


def accept_step(result: object, previous: Snapshot, item: WorkItem) -> Snapshot:
    """Check what ``step(previous, item)`` returned and return it as the next version.

    Args:
        result: the engine's return value.
        previous: the committed snapshot the step started from.
        item: the work item.

    Returns:
        A new snapshot (parsed from its JSON form) with ``version = previous.version + 1``.

    Raises:
        EngineContractError: ``result`` is not a :class:`Snapshot`, changes ``work_id`` or
            ``engine``, has invalid fields or is not JSON.
    """
    return accept(result, item, version=previous.version + 1, previous=previous)[0]


def snapshot_to_json(snapshot: Snapshot) -> str:
    """Serialize a snapshot to compact JSON text (the form runtimes store).

    Raises:
        EngineContractError: the snapshot has invalid fields or data that is not JSON
            (objects, NaN, infinities).
    """
    return _encode(snapshot, "snapshot_to_json")


def snapshot_from_json(text: str | bytes) -> Snapshot:
    """Parse a snapshot from the JSON text :func:`snapshot_to_json` produced.

    Raises:
        pydantic.ValidationError: the text is not a valid snapshot.
    """
    return Snapshot.model_validate_json(text)


def fresh_copy(snapshot: Snapshot) -> Snapshot:
    """Return a deep copy of ``snapshot`` that shares nothing with it, via its JSON form."""
    return snapshot_from_json(snapshot_to_json(snapshot))
