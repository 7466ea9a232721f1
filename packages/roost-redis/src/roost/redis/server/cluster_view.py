"""``CLUSTER NODES`` parsed: how one node of a Redis Cluster sees each member (tests).

:class:`NodeView` is one line of the reply: the member's id, the port it announces, its
flags, its primary (for a replica), the slot ranges it serves, and whether a slot of it is
being imported or migrated. :func:`cluster_view` asks one node for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from roost.redis.server.nodes import Node

__all__ = ["SLOTS", "NodeView", "Ranges", "cluster_view", "covers"]

SLOTS = 16384
"""Hash slots in a Redis Cluster."""

Ranges = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class NodeView:
    """One line of ``CLUSTER NODES``: how one node sees another (or itself)."""

    id: str
    port: int
    flags: frozenset[str]
    primary_id: str | None
    slots: Ranges
    moving: bool

    @property
    def is_primary(self) -> bool:
        """Whether this node is seen as a primary."""
        return "master" in self.flags

    @property
    def failing(self) -> bool:
        """Whether it is flagged as failing (``fail`` or ``fail?``) or not yet met."""
        return bool(self.flags & {"fail", "fail?", "handshake", "noaddr"})

    @classmethod
    def parse(cls, line: str) -> NodeView:
        """Parse one ``CLUSTER NODES`` line."""
        fields = line.split()
        address = fields[1].split(",", 1)[0]
        port = int(address.rsplit(":", 1)[1].split("@", 1)[0])
        slots: list[tuple[int, int]] = []
        moving = False
        for item in fields[8:]:
            if item.startswith("["):
                moving = True
                continue
            first, _, last = item.partition("-")
            slots.append((int(first), int(last or first)))
        return cls(
            id=fields[0],
            port=port,
            flags=frozenset(fields[2].split(",")),
            primary_id=None if fields[3] == "-" else fields[3],
            slots=tuple(slots),
            moving=moving,
        )


def covers(ranges: Iterable[tuple[int, int]], slot: int) -> bool:
    """Whether ``slot`` lies in one of ``ranges``."""
    return any(first <= slot <= last for first, last in ranges)


def cluster_view(node: Node) -> list[NodeView]:
    """``CLUSTER NODES`` as ``node`` sees it."""
    text = str(node.command("CLUSTER", "NODES"))
    return [NodeView.parse(line) for line in text.splitlines() if line.strip()]
