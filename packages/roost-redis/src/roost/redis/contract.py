"""The contract of a Roost script: its KEYS, ARGV and replies, by name.

Every ``lua/NAME.lua`` opens with a header that says what the script takes and answers::

    -- KEYS: @states @due meta item res* resw* kids?
    -- ARGV: @events_maxlen work_id token nres items*(work_id json)
    -- REPLY OK: version event_id
    -- REPLY GONE
    -- REPLY: requeued dead          (a script whose reply carries no code)

A line that starts with ``--`` and two or more spaces continues the line above. A slot is
a name; ``@name`` is a namespace slot the store fills in (the state indexes, the queue's
leases and due sets, the event stream, the route's delivery lists...: see
:data:`NAMESPACE_KEYS` and :data:`NAMESPACE_ARGS`); ``name*`` takes any number of values
(a list), ``name*(a b c)`` any number of groups of those slots, ``name?`` one value that
may be left out (at the end only). A ``REPLY CODE`` line names the fields that follow the
code in that reply.

The Python side states the same contract for each script (``roost.redis.calls``), packs
its keys and arguments by name in the contract's order with :func:`pack`, and reads
replies with :func:`decode`; a test holds the two statements equal. So a script's key
order is written once, in its header, and checked everywhere else.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar, cast

__all__ = [
    "NAMESPACE_ARGS",
    "NAMESPACE_KEYS",
    "Code",
    "Contract",
    "ContractError",
    "Slot",
    "Packer",
    "decode",
    "pack",
    "packer",
    "parse_header",
    "parse_slots",
]

NAMESPACE_KEYS = (
    "states",
    "leases",
    "due",
    "events",
    "stats",
    "saq_queued",
    "saq_active",
    "saq_incomplete",
    "strand",
    "engines",
)
"""The namespace key slots a script may take, in the order they must come (all first).

``@states`` is the 11 state indexes in ``keys.STATE_ORDER``; the rest are one key each,
of the queue (leases, due), the namespace (events, stats) or the route (the SAQ lists of
the item's engine, its stranded-delivery hash, the queue's set of engines).
"""
NAMESPACE_ARGS = ("saq_name", "events_maxlen", "worker", "lease_ttl", "engine")
"""The namespace argument slots a script may take, in the order they must come (all first)."""


R = TypeVar("R")


class ContractError(ValueError):
    """A header that does not parse, or a call that does not fit its contract."""


class Code(StrEnum):
    """Every reply code a Roost script answers with (the first value of its reply)."""

    OK = "OK"
    GONE = "GONE"
    """No such item (never created, or purged)."""
    STALE = "STALE"
    """The caller's lease lapsed or passed to another worker: nothing was written."""
    DUP = "DUP"
    """A repeat of this very call (its reply was lost) that already applied."""
    CANCELLED = "CANCELLED"
    """An operator cancelled the item while its step ran; the lease was let go."""
    CONFLICT = "CONFLICT"
    """The item is not in a state (or version) the call can act on."""
    TERMINAL = "TERMINAL"
    """The item is finished."""
    ALREADY = "ALREADY"
    """The item is already paused (or marked to pause)."""
    SKIP = "SKIP"
    """The delivery is not the item's current one (it moved on)."""
    NEEDRES = "NEEDRES"
    """The caller read other resources than the item has: call again with these."""
    WAIT = "WAIT"
    """A resource is taken: the item waits (no attempt used)."""
    DEAD = "DEAD"
    """The item ran out of attempts."""
    FAILED = "FAILED"
    """The item failed for good (a terminal error)."""
    RETRYING = "RETRYING"
    """The attempt failed; the item runs again after a backoff."""
    TAKEN = "TAKEN"
    """A child's idempotency key names an item that cannot become this item's child."""
    RACE = "RACE"
    """A child's idempotency key changed hands since the caller read it: read and repeat."""
    WOKE = "WOKE"
    """The signal woke the item (it awaited that name)."""
    KEPT = "KEPT"
    """The signal is kept for a later wait or step."""
    FULL = "FULL"
    """The item holds too many unconsumed signals."""
    LOST = "LOST"
    """(renew) The lease expired or passed to another worker."""
    # -- the schedule scripts (lua/schedules)
    DECIDED = "DECIDED"
    """(schedules) The tick's outcome is recorded (by this call or an earlier one)."""
    MOVED = "MOVED"
    """(schedules) Another worker went on, or the schedule changed."""
    PAUSED = "PAUSED"
    """(schedules) The schedule is paused."""
    SAME = "SAME"
    """(schedules) Already paused, or already running."""
    EXISTS = "EXISTS"
    """(schedules) A schedule of that name exists and replacing it was not asked."""
    RETRY = "RETRY"
    """(schedules) It changed since the caller read it: read again and repeat."""


@dataclass(frozen=True)
class Slot:
    """One place in KEYS or ARGV (or a reply): a name and how many values it holds."""

    name: str
    many: bool = False
    """``name*``: any number of values (or of groups)."""
    optional: bool = False
    """``name?``: one value that may be left out."""
    namespace: bool = False
    """``@name``: filled in by the store from the namespace and route."""
    group: tuple[Slot, ...] = ()
    """``name*(a b)``: the slots of each group."""

    def __str__(self) -> str:
        head = ("@" if self.namespace else "") + self.name
        if self.group:
            return f"{head}*({' '.join(str(s) for s in self.group)})"
        return head + ("*" if self.many else "") + ("?" if self.optional else "")


@dataclass(frozen=True)
class Contract:
    """What one script takes and answers."""

    name: str
    keys: tuple[Slot, ...]
    args: tuple[Slot, ...]
    replies: Mapping[Code | None, tuple[Slot, ...]] = field(default_factory=dict[Any, Any])
    """Reply code to the fields after it; ``None`` for a script whose reply has no code."""

    @classmethod
    def of(cls, name: str, *, keys: str, args: str, replies: Mapping[str, str]) -> Contract:
        """A contract from the header's own notation (``replies``: code, or ``''``, to fields)."""
        return cls(
            name,
            parse_slots(keys),
            parse_slots(args),
            {(Code(c) if c else None): parse_slots(f) for c, f in replies.items()},
        )

    @functools.cached_property
    def namespace_keys(self) -> tuple[str, ...]:
        """The namespace key slots the script takes (they lead its KEYS)."""
        return tuple(s.name for s in self.keys if s.namespace)

    @functools.cached_property
    def namespace_args(self) -> tuple[str, ...]:
        """The namespace argument slots the script takes (they lead its ARGV)."""
        return tuple(s.name for s in self.args if s.namespace)

    @functools.cached_property
    def own_keys(self) -> tuple[Slot, ...]:
        """The KEYS slots after the namespace ones."""
        return tuple(s for s in self.keys if not s.namespace)

    @functools.cached_property
    def own_args(self) -> tuple[Slot, ...]:
        """The ARGV slots after the namespace ones."""
        return tuple(s for s in self.args if not s.namespace)

    @functools.cached_property
    def pack_keys(self) -> Packer:
        """:func:`pack` of :attr:`own_keys`, planned once (what every call of the script runs)."""
        return packer(self.own_keys)

    @functools.cached_property
    def pack_args(self) -> Packer:
        """:func:`pack` of :attr:`own_args`, planned once."""
        return packer(self.own_args)

    @property
    def coded(self) -> bool:
        """Whether the script's reply starts with a :class:`Code`."""
        return None not in self.replies

    def describe(self) -> str:
        """The contract in the header's notation (what a test compares)."""
        lines = [
            f"KEYS: {' '.join(map(str, self.keys))}",
            f"ARGV: {' '.join(map(str, self.args))}",
        ]
        for code, fields in self.replies.items():
            head = "REPLY" if code is None else f"REPLY {code}"
            lines.append(f"{head}: {' '.join(map(str, fields))}".rstrip(": "))
        return "\n".join(lines)


_TOKEN = re.compile(r"(@?)([a-z_][a-z0-9_]*)(\*\(([^)]*)\)|\*|\?)?")


def parse_slots(text: str) -> tuple[Slot, ...]:
    """Slots from their notation (``meta item res* @due kids? items*(a b)``).

    Raises:
        ContractError: a token that is not a slot.
    """
    slots: list[Slot] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ContractError(f"cannot read a slot at {text[pos:]!r}")
        at, name, mark, inner = m.group(1), m.group(2), m.group(3) or "", m.group(4)
        group = parse_slots(inner) if inner is not None else ()
        slots.append(
            Slot(
                name,
                many=mark.startswith("*"),
                optional=mark == "?",
                namespace=bool(at),
                group=group,
            )
        )
        pos = m.end()
    return tuple(slots)


_LINE = re.compile(r"--\s(KEYS|ARGV|REPLY)(?:\s+([A-Z]+))?\s*:?(.*)$")
_MORE = re.compile(r"--\s{2,}(\S.*)$")


def parse_header(name: str, source: str) -> Contract:
    """The contract a script's opening comment states.

    Raises:
        ContractError: the header lacks KEYS or ARGV, or a line does not parse.
    """
    sections: list[list[str]] = []
    for line in source.splitlines():
        if not line.startswith("--"):
            break
        m = _LINE.match(line)
        if m:
            sections.append([m.group(1), m.group(2) or "", m.group(3)])
            continue
        more = _MORE.match(line)
        if more and sections:
            sections[-1][2] += " " + more.group(1)
        elif sections:
            sections.append(["", "", ""])  # prose after a section ends it
    keys = args = None
    replies: dict[Code | None, tuple[Slot, ...]] = {}
    for kind, code, text in sections:
        if kind == "KEYS":
            keys = parse_slots(text)
        elif kind == "ARGV":
            args = parse_slots(text)
        elif kind == "REPLY":
            replies[Code(code) if code else None] = parse_slots(text)
    if keys is None or args is None or not replies:
        raise ContractError(f"{name}.lua: its header must state KEYS, ARGV and REPLY")
    return Contract(name, keys, args, replies)


def pack(slots: Sequence[Slot], values: Mapping[str, Any], out: list[Any]) -> list[Any]:
    """Append ``values`` to ``out`` in the order of ``slots`` and return ``out``.

    A ``*`` slot takes a list (of values, or of mappings for a group); an ``?`` slot may be
    missing. ``slots`` are a script's own (:attr:`Contract.own_keys`, :attr:`Contract.own_args`):
    the store puts the namespace values first.

    Raises:
        ContractError: a value with no slot, or a slot with no value.
    """
    used = 0
    for slot in slots:
        if slot.namespace:
            raise ContractError(f"@{slot.name} is the store's to fill")
        if slot.name not in values:
            if slot.optional or slot.many:
                continue
            raise ContractError(f"no value for {slot.name}")
        used += 1
        value = values[slot.name]
        if slot.group:
            for member in value:
                pack(slot.group, member, out)
        elif slot.many:
            out += value
        else:
            out.append(value)
    if used != len(values):
        known = {s.name for s in slots}
        raise ContractError(f"no slot for {sorted(set(values) - known)}")
    return out


Packer = Callable[[Mapping[str, Any], list[Any]], list[Any]]
"""``packer(values, out)``: :func:`pack` of fixed slots."""


def packer(slots: Sequence[Slot]) -> Packer:
    """:func:`pack` for ``slots``, compiled once into straight-line code.

    It appends the same values in the same order and refuses the same calls (the message
    comes from :func:`pack` itself): a script call runs this, not the generic walk, which
    costs a loop pass per slot on every call. The code is generated from the slot names,
    which the notation limits to ``[a-z_][a-z0-9_]*``.

    Raises:
        ContractError: a namespace slot among ``slots`` (the store fills those in).
    """
    slots = tuple(slots)
    for slot in slots:
        if slot.namespace:
            raise ContractError(f"@{slot.name} is the store's to fill")
        if not _SLOT_NAME.fullmatch(slot.name):
            raise ContractError(f"not a slot name: {slot.name!r}")

    def refuse(values: Mapping[str, Any]) -> ContractError:
        pack(slots, values, [])  # raises the precise error
        return ContractError(f"values do not fit {' '.join(map(str, slots))}")

    scope: dict[str, Any] = {"_refuse": refuse, "_MISSING": _MISSING}
    lines = ["def run(values, out):", "    present = 0"]
    required: list[str] = []

    def flush() -> None:
        if required:
            names = ", ".join(f"values[{n!r}]" for n in required)
            lines.extend(
                [
                    "    try:",
                    f"        out += ({names},)",
                    "    except KeyError:",
                    "        raise _refuse(values) from None",
                ]
            )
            required.clear()

    count = 0
    for i, slot in enumerate(slots):
        if not (slot.many or slot.optional):
            required.append(slot.name)
            count += 1
            continue
        flush()
        lines.append(f"    value = values.get({slot.name!r}, _MISSING)")
        lines.append("    if value is not _MISSING:")
        lines.append("        present += 1")
        if slot.group:
            scope[f"_group{i}"] = packer(slot.group)
            lines.append("        for member in value:")
            lines.append(f"            _group{i}(member, out)")
        elif slot.many:
            lines.append("        out += value")
        else:
            lines.append("        out.append(value)")
    flush()
    lines.append(f"    if len(values) != {count} + present:")
    lines.append("        raise _refuse(values)")
    lines.append("    return out")
    exec("\n".join(lines), scope)  # noqa: S102 - code made above from checked slot names
    return cast("Packer", scope["run"])


_SLOT_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_MISSING: Any = object()


def _converter(hint: Any) -> Callable[[Any], Any]:
    if hint is bool:
        return lambda v: bool(v) and v != "0" and v != 0
    if hint is int:
        return int
    if hint is float:
        return float
    if hint is str:
        return str
    if hint is Code:
        return Code
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        inner = _converter(next(a for a in args if a is not type(None)))
        return lambda v: None if v is None or v == "" else inner(v)
    return lambda v: v


def _expression(hint: Any, ref: str) -> str:
    """Python code that does what ``_converter(hint)`` does to the value at ``ref``."""
    if hint is bool:
        return f'(bool({ref}) and {ref} != "0" and {ref} != 0)'
    if hint in (int, float, str):
        return f"{hint.__name__}({ref})"
    if hint is Code:
        return f"_Code({ref})"
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        inner = _expression(next(a for a in args if a is not type(None)), ref)
        return f'(None if {ref} is None or {ref} == "" else {inner})'
    return ref


_CODES: dict[str, Code] = {c.value: c for c in Code}
_Fields = tuple[tuple[str, ...], tuple[Callable[[Any], Any], ...], Slot | None]
"""The scalar fields of a reply (names, converters) and its ``*`` field, if any."""
_Decoder = Callable[[Any], Any]
_DECODERS: dict[tuple[str, type[Any]], _Decoder] = {}


def _groups(values: list[Any], start: int, size: int) -> list[tuple[Any, ...]]:
    """``values`` from ``start`` on, as tuples of ``size`` (a ``*`` field with groups)."""
    return [tuple(values[i : i + size]) for i in range(start, len(values), size)]


def _whole_replies(
    plans: Mapping[Code | None, _Fields], hints: Mapping[str, Any], cls: type[Any]
) -> dict[Code | None, tuple[int, Callable[[list[Any], Any], Any]]]:
    """Per code, how many values a reply with every field has, and a function that reads it.

    The reply that carries every field is the usual case: the function builds the class in
    one call, each conversion written out (code compiled from the field names, which the
    notation limits to ``[a-z_][a-z0-9_]*``).
    """
    scope: dict[str, Any] = {"_cls": cls, "_Code": Code, "_groups": _groups}
    whole: dict[Code | None, tuple[int, Callable[[list[Any], Any], Any]]] = {}
    for code, (names, _, tail) in plans.items():
        if not all(_SLOT_NAME.fullmatch(n) for n in (*names, *([tail.name] if tail else []))):
            continue  # not a name the notation makes: the general path reads it
        start = 0 if code is None else 1
        parts = [] if code is None else ["code=code"]
        parts += [
            f"{n}={_expression(hints[n], f'values[{start + i}]')}" for i, n in enumerate(names)
        ]
        if tail is not None and tail.group:
            parts.append(f"{tail.name}=_groups(values, {start + len(names)}, {len(tail.group)})")
        elif tail is not None:
            parts.append(f"{tail.name}=values[{start + len(names)}:]")
        fn = f"_whole_{code or 'reply'}"
        exec(f"def {fn}(values, code):\n    return _cls({', '.join(parts)})", scope)  # noqa: S102
        whole[code] = (start + len(names), scope[fn])
    return whole


def _decoder(contract: Contract, cls: type[Any]) -> _Decoder:
    """Raw reply to ``cls``, planned once per script and class (see :func:`decode`)."""
    hints = typing.get_type_hints(cls)
    convert = {f.name: _converter(hints[f.name]) for f in dataclasses.fields(cls)}
    plans: dict[Code | None, _Fields] = {}
    for code, fields in contract.replies.items():
        scalars = tuple(itertools.takewhile(lambda s: not s.many, fields))
        tail = fields[len(scalars)] if len(scalars) < len(fields) else None
        plans[code] = (
            tuple(s.name for s in scalars),
            tuple(convert[s.name] for s in scalars),
            tail,
        )
    name = contract.name
    uncoded = plans.get(None)
    whole = _whole_replies(plans, hints, cls)

    def run(raw: Any) -> Any:
        values: list[Any]
        if isinstance(raw, list):
            values = cast("list[Any]", raw)
        else:
            values = list(cast("tuple[Any, ...]", raw)) if isinstance(raw, tuple) else [raw]
        code: Code | None = None
        if uncoded is not None:
            names, converters, tail = uncoded
            start = 0
        else:
            try:
                code = _CODES[values[0]]
                names, converters, tail = plans[code]
            except (KeyError, TypeError, IndexError):
                head = values[0] if values else None
                raise ContractError(f"{name} does not answer {head!r}") from None
            start = 1
        fast = whole.get(code)
        if fast is not None and (
            len(values) == fast[0] or (tail is not None and len(values) >= fast[0])
        ):
            return fast[1](values, code)
        kwargs: dict[str, Any] = {} if code is None else {"code": code}
        width = len(names)
        if tail is None and len(values) - start > width:
            raise ContractError(f"{name} answered more than its contract: {raw!r}")
        for field_name, conv, value in zip(
            names, converters, values[start : start + width], strict=False
        ):
            kwargs[field_name] = conv(value)
        if tail is not None and len(values) >= start + width:
            rest = values[start + width :]
            if tail.group:
                size = len(tail.group)
                kwargs[tail.name] = [tuple(rest[i : i + size]) for i in range(0, len(rest), size)]
            else:
                kwargs[tail.name] = rest
        return cls(**kwargs)

    return run


def decode(contract: Contract, raw: Any, cls: type[R]) -> R:
    """A script's raw reply as ``cls`` (a dataclass with a field per reply field).

    A coded reply fills ``code`` and the fields its code names; a ``*`` field takes the
    rest (as tuples for a group). Fields the reply does not carry keep their defaults.

    Raises:
        ContractError: a code the contract does not list, or more values than fields.
    """
    key = (contract.name, cls)
    run = _DECODERS.get(key)
    if run is None:
        run = _DECODERS[key] = _decoder(contract, cls)
    return cast("R", run(raw))
