"""A local Redis Cluster for tests: three primaries, each with one replica, on 127.0.0.1.

:class:`ClusterGroup` starts the nodes from the same binary as the single-server fixtures
(``cluster-enabled``, append-only file on by default, so a restarted node keeps its data),
then builds the cluster with plain commands, so no ``redis-cli`` is needed: ``CLUSTER
SET-CONFIG-EPOCH``, ``CLUSTER ADDSLOTSRANGE`` (the 16384 slots split evenly, in order),
``CLUSTER MEET`` between every pair, ``CLUSTER REPLICATE``; and waits until it is stable.
Every process is a child of the test process, on free 127.0.0.1 ports (the cluster bus
too), and :meth:`ClusterGroup.close` stops all of them by PID.

The ``redis_cluster`` fixture (in :mod:`roost.redis.testing`) gives a started cluster;
``redis_cluster_factory(primaries=3, replicas=1, node_timeout_ms=1000, proxied=False,
config={...})`` starts more or different ones. Helpers:

- :attr:`~ClusterGroup.url`: ``redis+cluster://127.0.0.1:P1,...,127.0.0.1:P6/``;
- :meth:`~ClusterGroup.view`: one node's ``CLUSTER NODES``, parsed;
  :meth:`~ClusterGroup.primaries`, :meth:`~ClusterGroup.replicas_of`,
  :meth:`~ClusterGroup.slot_owner`, :meth:`~ClusterGroup.key_owner`,
  :meth:`~ClusterGroup.slots_of`;
- :meth:`~ClusterGroup.kill` (SIGKILL) and :meth:`~ClusterGroup.restart` (a primary that was
  failed over comes back as a replica of its successor);
- :meth:`~ClusterGroup.failover`: ``CLUSTER FAILOVER [FORCE|TAKEOVER]`` on a replica;
- :meth:`~ClusterGroup.wait_failover`: the slots of a dead or demoted primary are served by
  another node, and the cluster is stable;
- :meth:`~ClusterGroup.wait_ok`: every live node says ``cluster_state:ok`` with all 16384
  slots served, all live nodes agree on who serves what and who replicates whom, no slot is
  mid-migration, and every live replica's link is up;
- :meth:`~ClusterGroup.move_slots`: a live reshard (``CLUSTER SETSLOT ... IMPORTING`` /
  ``MIGRATING``, ``MIGRATE`` in batches, ``SETSLOT ... NODE``), what ``redis-cli --cluster
  reshard`` does; clients see ``ASK`` while a slot moves and ``MOVED`` after;
- :meth:`~ClusterGroup.reshard`: the same with ``valkey-cli --cluster reshard`` itself (the
  client next to the server binary, else ``valkey-cli`` or ``redis-cli`` on ``PATH``), what
  users run.

Nodes run with ``cluster-replica-validity-factor 0`` (a replica always may take over, however
long its link was down) and ``cluster-allow-replica-migration no`` (replicas stay where they
were put). A replica that has not received a write yet is left out of ``CLUSTER SLOTS`` (so
clients do not see it) until its primary writes something. With ``proxied=True`` each node
sits behind its own :class:`~roost.redis.server.proxy.TcpProxy` and announces the proxy's
port, so clients and replication links go through it (the cluster bus does not). The
blocking helpers poll; call them from an async test with ``await asyncio.to_thread(...)``.
Needs Redis 7+ or Valkey.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Unpack

from redis.crc import key_slot

from roost.redis.server.cluster_view import SLOTS, NodeView, Ranges, cluster_view, covers
from roost.redis.server.nodes import Node, NodeGroup, NodeOptions, wait_until
from roost.redis.server.process import HOST, ConfigValue, ServerError, free_port

__all__ = ["ClusterGroup"]


class ClusterGroup(NodeGroup):
    """``primaries`` primaries with ``replicas`` replicas each, on 127.0.0.1.

    Attributes:
        nodes: every node; ``node-0`` to ``node-{primaries-1}`` start as primaries, the
            following ones as replicas of them in turn.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        primaries: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 1000,
        **options: Unpack[NodeOptions],
    ) -> None:
        """Describe a cluster; nothing runs until :meth:`start`.

        Args:
            root: directory for the nodes' directories (created).
            primaries: how many primaries share the slots.
            replicas: how many replicas each primary has.
            node_timeout_ms: ``cluster-node-timeout``: silence after which a node is
                suspected to fail (a failover starts about then).
            **options: how the nodes run (:class:`NodeOptions`: ``proxied``, ``appendonly``,
                ``binary``, ``config``).
        """
        super().__init__(root, **options)
        self._primaries = primaries
        self._replicas = replicas
        self._node_timeout_ms = node_timeout_ms
        self._ids: dict[str, str] = {}
        self._layout: dict[str, Ranges] = {}
        self._bus: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"ClusterGroup(nodes={self.nodes})"

    def _build(self, timeout: float) -> None:
        for index in range(self._primaries * (1 + self._replicas)):
            node = self._launch(self._own)
            self._ids[node.name] = str(node.command("CLUSTER", "MYID"))
            node.command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
        self._assign_slots()
        for index, node in enumerate(self.nodes):
            for other in self.nodes[index + 1 :]:
                node.command("CLUSTER", "MEET", HOST, other.port, self._bus[other.name])
        everyone = set(self._ids.values())
        wait_until(
            lambda: all(self._known(node) == everyone for node in self.nodes),
            timeout,
            "agreement on the cluster's members",
        )
        for index, node in enumerate(self.nodes[self._primaries :]):
            primary = self._ids[self.nodes[index % self._primaries].name]
            wait_until(
                lambda node=node, primary=primary: node.command("CLUSTER", "REPLICATE", primary),
                timeout,
                f"{node.name} replicating",
            )
        self.wait_ok(timeout)

    # -- reading the layout --------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis+cluster://`` URL naming every node as a seed."""
        return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in self.addresses) + "/"

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where clients reach the nodes (the proxies' ports when proxied)."""
        return [node.address for node in self.nodes]

    def node_id(self, node: Node) -> str:
        """The node's cluster id (it keeps it across restarts)."""
        return self._ids[node.name]

    def node_by_id(self, node_id: str) -> Node:
        """The node with that cluster id."""
        for node in self.nodes:
            if self._ids[node.name] == node_id:
                return node
        raise ServerError(f"no node with id {node_id}")

    def view(self, node: Node | None = None) -> list[NodeView]:
        """``CLUSTER NODES`` as ``node`` (default: the first live node) sees it."""
        return cluster_view(node or next(n for n in self.nodes if n.alive))

    def primaries(self) -> list[Node]:
        """The nodes serving slots, as the first live node sees it."""
        return [self.node_by_id(v.id) for v in self.view() if v.is_primary and v.slots]

    def replicas_of(self, primary: Node) -> list[Node]:
        """The nodes replicating ``primary``, as the first live node sees it."""
        wanted = self.node_id(primary)
        return [self.node_by_id(v.id) for v in self.view() if v.primary_id == wanted]

    def slots_of(self, node: Node) -> list[int]:
        """Every slot ``node`` serves, as the first live node sees it."""
        wanted = self.node_id(node)
        ranges = next((v.slots for v in self.view() if v.id == wanted), ())
        return [slot for first, last in ranges for slot in range(first, last + 1)]

    def slot_owner(self, slot: int) -> Node:
        """The primary serving ``slot``, as the first live node sees it."""
        for item in self.view():
            if item.is_primary and covers(item.slots, slot):
                return self.node_by_id(item.id)
        raise ServerError(f"no node serves slot {slot}")

    @staticmethod
    def keyslot(key: str | bytes) -> int:
        """The hash slot of ``key`` (hash tags included)."""
        return int(key_slot(key.encode() if isinstance(key, str) else key))

    def key_owner(self, key: str | bytes) -> Node:
        """The primary serving ``key``."""
        return self.slot_owner(self.keyslot(key))

    # -- faults --------------------------------------------------------------------------

    def kill(self, node: Node) -> Node:
        """SIGKILL ``node`` and return it."""
        node.kill()
        return node

    def restart(self, node: Node, timeout: float = 10.0) -> Node:
        """Start a stopped node again: same port, data and cluster identity."""
        node.server.start(timeout)
        return node

    def failover(self, replica: Node, option: str | None = None) -> Node:
        """Run ``CLUSTER FAILOVER [FORCE|TAKEOVER]`` on ``replica``; return its primary."""
        mine = next(v for v in self.view(replica) if "myself" in v.flags)
        if mine.primary_id is None:
            raise ServerError(f"{replica.name} is not a replica")
        replica.command("CLUSTER", "FAILOVER", *([option] if option else []))
        return self.node_by_id(mine.primary_id)

    # -- waiting -------------------------------------------------------------------------

    def wait_failover(self, old: Node, timeout: float = 30.0) -> Node:
        """Wait until the slots ``old`` served are served by another live node; return it.

        The slots are those of the last stable layout :meth:`wait_ok` saw.
        """
        slots = self._layout.get(self.node_id(old), ())
        if not slots:
            raise ServerError(f"{old.name} served no slots when the cluster was last stable")
        first = slots[0][0]

        def taken_over() -> Node | None:
            owner = self.slot_owner(first)
            return owner if owner is not old and owner.alive else None

        new = wait_until(taken_over, timeout, f"successor of {old.name}", self._state)
        self.wait_ok(timeout)
        return new

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until the cluster is stable (see the module docstring)."""
        wait_until(self._ok, timeout, "stable cluster", self._state)

    # -- resharding ----------------------------------------------------------------------

    def move_slots(self, slots: Iterable[int], target: Node, batch: int = 100) -> None:
        """Move ``slots`` (with their keys) to the primary ``target``, one slot at a time."""
        target_id = self.node_id(target)
        for slot in slots:
            source = self.slot_owner(slot)
            if source is target:
                continue
            source_id = self.node_id(source)
            target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while keys := source.command("CLUSTER", "GETKEYSINSLOT", slot, batch):
                source.command("MIGRATE", HOST, target.port, "", 0, 5000, "KEYS", *keys)
            for node in [target, source, *self.primaries()]:
                if node.alive:
                    node.command("CLUSTER", "SETSLOT", slot, "NODE", target_id)

    def reshard(self, source: Node, target: Node, count: int, timeout: float = 300.0) -> str:
        """Move the ``count`` lowest slots of ``source`` to ``target`` with the CLI.

        Runs ``--cluster reshard ... --cluster-yes`` of :meth:`cli_binary`; returns its output.

        Raises:
            ServerError: the client is missing, failed or took longer than ``timeout``.
        """
        command = [
            str(self.cli_binary()),
            "--cluster",
            "reshard",
            f"{HOST}:{source.address[1]}",
            "--cluster-from",
            self.node_id(source),
            "--cluster-to",
            self.node_id(target),
            "--cluster-slots",
            str(count),
            "--cluster-yes",
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServerError(f"{command[0]} --cluster reshard: {exc}") from exc
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
            raise ServerError(f"{command[0]} --cluster reshard exited {done.returncode}: {tail}")
        return done.stdout

    def cli_binary(self) -> Path:
        """The command-line client: the one next to the server binary, else on ``PATH``."""
        names = ("valkey-cli", "redis-cli")
        if self.binary is not None:
            for name in names:
                beside = self.binary.parent / name
                if os.access(beside, os.X_OK):
                    return beside
        for name in names:
            if found := shutil.which(name):
                return Path(found)
        raise ServerError("no valkey-cli or redis-cli next to the server binary or on PATH")

    # -- internals -----------------------------------------------------------------------

    def _own(self, name: str, announced: int) -> dict[str, ConfigValue]:
        """A node's own directives: cluster mode on a free bus port, what it announces."""
        bus = self._bus[name] = free_port()
        own: dict[str, ConfigValue] = {
            "cluster-enabled": True,
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": self._node_timeout_ms,
            "cluster-port": bus,
            "cluster-replica-validity-factor": 0,
            "cluster-allow-replica-migration": False,
        }
        if self._proxied:
            own["cluster-announce-ip"] = HOST
            own["cluster-announce-port"] = announced
        return own

    def _assign_slots(self) -> None:
        for index, node in enumerate(self.nodes[: self._primaries]):
            first = index * SLOTS // self._primaries
            last = (index + 1) * SLOTS // self._primaries - 1
            node.command("CLUSTER", "ADDSLOTSRANGE", first, last)

    def _known(self, node: Node) -> set[str]:
        return {v.id for v in self.view(node) if not v.failing}

    def _ok(self) -> bool:
        live = [node for node in self.nodes if node.alive]
        if not live:
            return False
        live_ids = {self.node_id(node) for node in live}
        layouts: list[dict[str, tuple[bool, str | None, Ranges]]] = []
        for node in live:
            info = dict(
                line.split(":", 1)
                for line in str(node.command("CLUSTER", "INFO")).splitlines()
                if ":" in line
            )
            if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(SLOTS):
                return False
            views = self.view(node)
            if any(v.moving or (v.id in live_ids and v.failing) for v in views):
                return False
            layouts.append(
                {v.id: (v.is_primary, v.primary_id, v.slots) for v in views if v.id in live_ids}
            )
            mine = next(v for v in views if "myself" in v.flags)
            if not mine.is_primary:
                primary = next(v for v in views if v.id == mine.primary_id)
                replication = node.info("replication")
                if (
                    replication.get("master_link_status") != "up"
                    or int(replication["master_port"]) != primary.port
                ):
                    return False
        if any(layout != layouts[0] for layout in layouts):
            return False
        self._layout = {
            node_id: slots for node_id, (primary, _, slots) in layouts[0].items() if primary
        }
        return True

    def _state(self) -> str:
        parts: list[str] = []
        for node in self.nodes:
            if not node.alive:
                parts.append(f"{node.name}: down")
                continue
            mine = next(v for v in self.view(node) if "myself" in v.flags)
            role = "primary" if mine.is_primary else f"replica of {mine.primary_id}"
            parts.append(f"{node.name} {mine.id[:8]}: {role} slots={list(mine.slots)}")
        return "; ".join(parts)
