"""Every Redis key Roost uses, built in one place.

Roost's keys live under ``{prefix}:{{{namespace}}}:``; the braces are a Redis Cluster hash
tag, so every key of a namespace (and the SAQ queue of each of its queues, whose name carries
the same tag) hashes to one slot and every script's keys share it. Per-queue structures
(the lease and due indexes) carry the queue name; each engine has its own SAQ queue (its
delivery lists) inside a queue, named after both.

A namespace of P partitions (``docs/scaling-out.md``) has one base per partition: partition
0 keeps the base above (so a namespace of one partition has exactly the keys it always had,
and what exists once per namespace, such as the workers' heartbeats, lives there), partition
``k >= 1`` has ``{prefix}:{{{namespace}|{k}}}:``. Each partition holds its own copy of the
per-item structures and the keys of its items, so a script's keys still share one slot.

Names inside keys (work ids, idempotency keys, resources, queues, worker ids, and the prefix
and namespace themselves) are encoded, so that no name can form another name's key. The
grammar of a key is::

    key     = base family [":" part] [":" suffix]
    base    = part ":{" part "}:"          (prefix, namespace)
    part    = *( safe / "%" HEX HEX )      (a name, encoded)
    safe    = ALPHA / DIGIT / "_" / "." / "-"
    family  = "w:" / "idem:" / "res:" / "resw:" / "worker:" / "state:" / "q:" / ...
    suffix  = "item" / "snap" / "hist" / "sig" / "kids" / "leases" / "due" / ...  (fixed words)

Every UTF-8 byte of a name that is not ``safe`` is written as ``%`` and two uppercase hex
digits (``%`` itself included), so an encoded part never contains ``:``, ``|``, ``{`` or
``}``: ``X`` and ``X:item`` are ``w:X`` and ``w:X%3Aitem``, and ``w:X:item`` can only be the
item key of ``X``. The encoding is one-to-one, so two different names never share a key.

Names made only of ``safe`` characters (generated work ids, ``[A-Za-z0-9_.-]`` queue names,
prefixes and namespaces) encode to themselves: their keys are those of the earlier layout,
which wrote names as they were, and existing data stays readable with no migration. Only
names holding other characters (``:``, ``/``, ``@``, an idempotency key with spaces...) have
new keys; items stored under such names by the earlier layout are not found under the new.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import quote, unquote_to_bytes

from roost.runtime.models import WorkState

__all__ = [
    "JOB_SEPARATOR",
    "PARTITION_SEPARATOR",
    "ROUTE_SEPARATOR",
    "STATE_ORDER",
    "Keys",
    "decode_part",
    "encode_part",
    "partition_base",
]

STATE_ORDER: tuple[WorkState, ...] = (
    WorkState.QUEUED,
    WorkState.SCHEDULED,
    WorkState.RETRYING,
    WorkState.WAITING,
    WorkState.AWAITING,
    WorkState.PAUSED,
    WorkState.RUNNING,
    WorkState.DONE,
    WorkState.FAILED,
    WorkState.DEAD,
    WorkState.CANCELLED,
)
"""The order of the state indexes in a script's KEYS (its ``@states`` slot)."""

JOB_SEPARATOR = "|"
"""Separates the encoded work id and the dispatch token in a SAQ job key."""

_SAFE = re.compile(r"[A-Za-z0-9_.-]*")
_ENCODED = re.compile(r"(?:[A-Za-z0-9_.-]|%[0-9A-F]{2})*")


def encode_part(name: str) -> str:
    """A name as it appears inside a key: ``[A-Za-z0-9_.-]`` kept, every other byte ``%XX``."""
    if _SAFE.fullmatch(name):
        return name
    return quote(name, safe="", encoding="utf-8", errors="surrogatepass").replace("~", "%7E")


def decode_part(part: str) -> str | None:
    """The name an encoded part stands for, or None if ``part`` is not an encoding."""
    if not _ENCODED.fullmatch(part):
        return None
    try:
        name = unquote_to_bytes(part).decode("utf-8", errors="surrogatepass")
    except UnicodeDecodeError:
        return None
    return name if encode_part(name) == part else None


PARTITION_SEPARATOR = "|"
"""Joins a namespace and a partition number in a partition's hash tag (``{ns|3}``)."""


def partition_base(prefix: str, namespace: str, partition: int) -> str:
    """The base of partition ``partition`` (>= 1) of a namespace: ``prefix:{ns|k}:``.

    An encoded namespace never holds ``|``, so no namespace's own tag is another's partition.
    """
    return f"{encode_part(prefix)}:{{{encode_part(namespace)}{PARTITION_SEPARATOR}{partition}}}:"


ROUTE_SEPARATOR = "#"
"""Joins a queue and an engine id in per-engine names (never part of an encoded name)."""


class Keys:
    """Key names for one namespace and one queue, and the delivery lists of one engine.

    With ``engine`` None the SAQ names are the queue's single list of the layout before
    per-engine delivery (still read, to deliver what it holds after an upgrade).
    """

    def __init__(
        self,
        prefix: str,
        namespace: str,
        queue: str,
        engine: str | None = None,
        *,
        partition: int = 0,
    ) -> None:
        self.prefix = prefix
        self.namespace = namespace
        self.queue = queue
        self.engine = engine
        self.partition = partition
        """Which partition of the namespace these keys are (0: the home, today's keys)."""
        self.home = f"{encode_part(prefix)}:{{{encode_part(namespace)}}}:"
        """The base of partition 0, which also holds what exists once per namespace."""
        self.base = self.home if partition == 0 else partition_base(prefix, namespace, partition)
        self.conf = self.home + "conf"
        """Hash of the namespace's fixed settings (``partitions``), written once."""
        self.saq_name = f"{self.base}{encode_part(queue)}"
        """The SAQ queue name: carries the namespace's hash tag."""
        q = f"{self.base}q:{encode_part(queue)}:"
        self.leases = q + "leases"
        self.due = q + "due"
        self.strand = q + "strand"
        if engine is not None:
            self.saq_name += ROUTE_SEPARATOR + encode_part(engine)
            self.strand += ROUTE_SEPARATOR + encode_part(engine)
        self.recover_lock = q + "lock:recover"
        self.beats = q + "beats"
        """Sorted set of this queue's workers by their last heartbeat (server ms)."""
        self.engines = q + "engines"
        """Set of the engines with delivery lists (or live workers) in this queue."""
        self._q = q
        self._routes: dict[str, Keys] = {}
        self.events = self.base + "events"
        self.events_pump = self.base + "events:pump"
        """Which worker delivers the event stream to the event sinks now (its consumer name)."""
        self.stats = self.base + "stats"
        self.workers = self.home + "workers"
        self.ack = self.base + "ack"
        """Scratch string written just before a commit's WAIT/WAITAOF (Scripts.acked)."""
        # SAQ 0.26's RedisQueue names (saq/queue/redis.py: namespace() and job_id()).
        self.saq_queued = f"saq:{self.saq_name}:queued"
        self.saq_active = f"saq:{self.saq_name}:active"
        self.saq_incomplete = f"saq:{self.saq_name}:incomplete"
        self.ns = [self.state(s) for s in STATE_ORDER] + [
            self.leases,
            self.due,
            self.events,
            self.stats,
            self.saq_queued,
            self.saq_active,
            self.saq_incomplete,
            self.strand,
            self.engines,
        ]
        """Every namespace key a script may take (the slots of ``contract.NAMESPACE_KEYS``)."""
        self._slots: dict[tuple[str, ...], list[str]] = {}

    def slot_keys(self, slots: tuple[str, ...]) -> list[str]:
        """The keys of namespace slots (``states``, ``leases``, ``due``...), in that order.

        ``states`` is the state indexes in :data:`STATE_ORDER`; every other slot is the
        attribute of that name. Cached: a script's slots are the same on every call.
        """
        cached = self._slots.get(slots)
        if cached is not None:
            return cached
        found: list[str] = []
        for slot in slots:
            if slot == "states":
                found += [self.state(s) for s in STATE_ORDER]
            else:
                found.append(getattr(self, slot))
        self._slots[slots] = found
        return found

    def for_queue(self, queue: str) -> Keys:
        """Keys of a queue (this one or another) in the same namespace, no engine's lists."""
        if queue == self.queue and self.engine is None:
            return self
        return Keys(self.prefix, self.namespace, queue, partition=self.partition)

    def for_partition(self, partition: int) -> Keys:
        """The same queue's (and engine's) keys in another partition of the namespace."""
        if partition == self.partition:
            return self
        return Keys(self.prefix, self.namespace, self.queue, self.engine, partition=partition)

    def for_engine(self, engine: str) -> Keys:
        """Keys whose SAQ names are ``engine``'s delivery lists in this queue."""
        if engine == self.engine:
            return self
        routed = self._routes.get(engine)
        if routed is None:
            routed = self._routes[engine] = Keys(
                self.prefix, self.namespace, self.queue, engine, partition=self.partition
            )
        return routed

    def live(self, engine: str) -> str:
        """Sorted set of the live workers of this queue that run ``engine``, by heartbeat expiry."""
        return f"{self._q}live{ROUTE_SEPARATOR}{encode_part(engine)}"

    def state(self, state: WorkState | str) -> str:
        """Sorted set of the items in ``state``, scored by last update (ms)."""
        return f"{self.base}state:{encode_part(str(state))}"

    def meta(self, work_id: str) -> str:
        """Hash of the item's runtime fields (state, version, lease, attempts...)."""
        return f"{self.base}w:{encode_part(work_id)}"

    def item(self, work_id: str) -> str:
        """The WorkItem as JSON."""
        return f"{self.meta(work_id)}:item"

    def snap(self, work_id: str) -> str:
        """The latest snapshot as JSON."""
        return f"{self.meta(work_id)}:snap"

    def hist(self, work_id: str) -> str:
        """List of earlier snapshots, newest first (only with history on)."""
        return f"{self.meta(work_id)}:hist"

    def sig(self, work_id: str) -> str:
        """Stream of the signals sent to the item and not yet consumed, oldest first."""
        return f"{self.meta(work_id)}:sig"

    def kids(self, work_id: str) -> str:
        """Hash of an item's children: child work id -> '' while unfinished, else its state."""
        return f"{self.meta(work_id)}:kids"

    def idem(self, key: str) -> str:
        """Maps an idempotency key to its work id."""
        return f"{self.base}idem:{encode_part(key)}"

    def res(self, name: str) -> str:
        """A resource claim: holds the holder's work id, expires with its lease."""
        return f"{self.base}res:{encode_part(name)}"

    def resw(self, name: str) -> str:
        """Sorted set of items waiting for a resource, oldest first."""
        return f"{self.base}resw:{encode_part(name)}"

    def worker(self, worker_id: str) -> str:
        """Hash describing a live worker."""
        return f"{self.home}worker:{encode_part(worker_id)}"

    def item_keys(self, work_id: str) -> list[str]:
        """meta, item, snap, hist."""
        meta = self.meta(work_id)
        return [meta, f"{meta}:item", f"{meta}:snap", f"{meta}:hist"]

    def res_block(self, resources: list[str]) -> list[str]:
        """Resource keys followed by their waiter keys, as scripts expect them."""
        return [self.res(r) for r in resources] + [self.resw(r) for r in resources]

    @staticmethod
    def job_suffix(work_id: str, dispatch: str) -> str:
        """The SAQ job key of one delivery of an item."""
        return f"{encode_part(work_id)}{JOB_SEPARATOR}{dispatch}"

    def job(self, suffix: str) -> str:
        """The full SAQ job id (``saq:job:<queue>:<key>``) for a job key."""
        return f"saq:job:{self.saq_name}:{suffix}"

    def parse_job(self, job_id: str) -> tuple[str, str] | None:
        """Return (work_id, dispatch) of a SAQ job id of this queue, or None."""
        prefix = f"saq:job:{self.saq_name}:"
        if not job_id.startswith(prefix):
            return None
        part, sep, dispatch = job_id[len(prefix) :].rpartition(JOB_SEPARATOR)
        work_id = decode_part(part) if sep and part and dispatch else None
        return (work_id, dispatch) if work_id else None


def new_token() -> str:
    """A random token for dispatches and leases."""
    return secrets.token_hex(8)
