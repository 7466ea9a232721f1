"""Which partition of a namespace an item lives in (see docs/scaling-out.md).

The partition of a work id is a function of the id alone (:func:`partition_of`), so every
operation on an item finds its keys without a lookup. Enqueue chooses a new item's partition
(:class:`Placer`): by the idempotency key, so the duplicate check stays one script; by the
resource group, so claims stay one script; else spread evenly; and it gives the item an id
that names that partition (:func:`work_id_in`). With one partition, all of this is partition 0
and ids are plain as before.

Workers share a namespace's partitions by rendezvous (highest-random-weight) hashing over
the live workers of their queue that run an engine (:func:`served_by`): every worker ranks
the live workers for each partition by one hash of (worker, partition) and serves the
partitions where it ranks among the first :data:`COPIES`. No coordinator: workers that see
the same live set agree, and a worker joining or leaving moves only the partitions where it
ranks that high.
"""

from __future__ import annotations

import hashlib
import random
import re
import zlib
from collections.abc import Iterable, Sequence

from roost.runtime.errors import BadInput
from roost.runtime.models import new_work_id

__all__ = [
    "COPIES",
    "Placer",
    "group_of",
    "hash_partition",
    "owners",
    "partition_of",
    "served_by",
    "work_id_in",
]

COPIES = 2
"""How many live workers serve each partition (all of them when fewer): one worker's death
leaves each of its partitions served by another until the survivors rebalance."""

_PARTITIONED = re.compile(r"[0-9a-f]{32}\.p(0|[1-9][0-9]{0,3})")
"""A generated id that names its partition: 32 lowercase hex digits, ``.p``, the number."""


def hash_partition(name: str, partitions: int) -> int:
    """The partition a name (idempotency key, resource, caller's id) hashes to.

    Only its group (:func:`group_of`) counts, so ``tenant-7/db`` and ``tenant-7/job-1`` are
    in one partition: the way to keep an item's key and resources together.
    """
    if partitions == 1:
        return 0
    return zlib.crc32(group_of(name).encode("utf-8", "surrogatepass")) & (partitions - 1)


def partition_of(work_id: str, partitions: int) -> int:
    """The partition of ``work_id`` in a namespace of ``partitions`` partitions.

    An id of the generated form ``<32 hex>.p<k>`` (with ``k`` in range) is in partition
    ``k``; any other id in :func:`hash_partition` of itself; with one partition, in 0.
    """
    if partitions == 1:
        return 0
    m = _PARTITIONED.fullmatch(work_id)
    if m is not None and int(m.group(1)) < partitions:
        return int(m.group(1))
    return hash_partition(work_id, partitions)


def work_id_in(partition: int, partitions: int) -> str:
    """A new work id in ``partition`` (a plain random id with one partition)."""
    if partitions == 1:
        return new_work_id()
    return f"{new_work_id()}.p{partition}"


def group_of(name: str) -> str:
    """A name's group: the text before its first ``/`` (the whole name without one)."""
    return name.split("/", 1)[0]


def _weight(worker_id: str, partition: int) -> bytes:
    """The rendezvous weight of ``worker_id`` for ``partition`` (compared as bytes)."""
    text = f"{partition}|{worker_id}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=8).digest()


def owners(partition: int, workers: Iterable[str], copies: int = COPIES) -> list[str]:
    """The workers (of ``workers``) that serve ``partition``: the ``copies`` heaviest."""
    ranked = sorted(set(workers), key=lambda w: (_weight(w, partition), w), reverse=True)
    return ranked[:copies]


def served_by(
    worker_id: str, workers: Iterable[str], partitions: int, copies: int = COPIES
) -> frozenset[int]:
    """The partitions ``worker_id`` serves when ``workers`` are live (it counts itself in).

    Every partition has ``min(copies, live workers)`` servers, so with one worker, or as
    many as ``copies``, each serves every partition.
    """
    live = {*workers, worker_id}
    if partitions == 1 or len(live) <= copies:
        return frozenset(range(partitions))
    return frozenset(k for k in range(partitions) if worker_id in owners(k, live, copies))


class Placer:
    """Chooses the partitions of new items (one per process: it spreads them in turn)."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._next = random.randrange(partitions)

    def place(
        self,
        *,
        work_id: str | None,
        idempotency_key: str | None,
        resources: Sequence[str],
    ) -> int:
        """The partition of a new item; ``work_id``: the caller's, None for a generated one.

        Raises:
            BadInput: the item's id, idempotency key or resources name different partitions
                (they must share one for the duplicate check and claims to stay atomic).
        """
        p = self.partitions
        if p == 1:
            return 0
        wanted: list[tuple[str, int]] = []
        if work_id is not None:
            wanted.append((f"work id {work_id!r}", partition_of(work_id, p)))
        if idempotency_key is not None:
            wanted.append(("its idempotency key", hash_partition(idempotency_key, p)))
        groups = sorted({group_of(r) for r in resources})
        wanted += [(f"resource group {g!r}", hash_partition(g, p)) for g in groups]
        if not wanted:
            chosen, self._next = self._next, (self._next + 1) % p
            return chosen
        first, partition = wanted[0]
        for what, other in wanted[1:]:
            if other != partition:
                raise BadInput(
                    f"{first} and {what} are in different partitions ({partition} and {other} "
                    f"of {p}): give them one group (the text before the first '/'), "
                    "or let Roost choose the work id"
                )
        return partition
