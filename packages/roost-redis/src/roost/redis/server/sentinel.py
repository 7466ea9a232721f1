"""A local Redis Sentinel group for tests: one primary, its replicas and three sentinels.

:class:`SentinelGroup` starts the data nodes from the same binary as the single-server
fixtures (append-only file on by default, so a restarted node keeps its data), links the
replicas, then starts the sentinels (the same binary in sentinel mode, through a
``redis-sentinel`` link to it) and waits until each sentinel knows the others and every
replica. Every process is a child of the test process, on a free 127.0.0.1 port, and
:meth:`SentinelGroup.close` stops all of them by PID.

The ``redis_sentinel`` fixture (in :mod:`roost.redis.testing`) gives a started group;
``redis_sentinel_factory(proxied=False, replicas=1, down_after_ms=1000, config={...})``
starts more or different ones. Helpers:

- :attr:`~SentinelGroup.url`: ``redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/roost``;
- :meth:`~SentinelGroup.primary` / :meth:`~SentinelGroup.replicas`: the nodes the sentinels
  name now; :meth:`~SentinelGroup.reported_primary`: the address they agree on, if any;
- :meth:`~SentinelGroup.kill_primary` (SIGKILL), :meth:`~SentinelGroup.restart` (a killed node
  comes back as a replica of the current primary, or with ``as_replica=False`` as the stale
  primary it was, for the sentinels to demote);
- :meth:`~SentinelGroup.failover`: ``SENTINEL FAILOVER``;
- :meth:`~SentinelGroup.wait_failover`: a primary other than the old one is elected;
- :meth:`~SentinelGroup.wait_stable`: the sentinels agree on a live primary, no other node
  calls itself primary, every live replica's link to it is up, every sentinel knows the
  others, and a quorum of sentinels sees every live replica as fit to promote.

With ``proxied=True`` each data node sits behind its own
:class:`~roost.redis.server.proxy.TcpProxy` and is known to everyone (sentinels, clients,
replicas) by the proxy's port, so a replica's link to its primary goes through the
primary's proxy: ``group.primary().proxy.pause()`` stalls it.

The blocking helpers poll; call them from an async test with ``await asyncio.to_thread(...)``
so that the test's own clients keep running meanwhile. Needs Redis 7+ or Valkey.
"""

from __future__ import annotations

import os
from typing import Any, Unpack

from roost.redis.server.nodes import (
    Address,
    Node,
    NodeGroup,
    NodeOptions,
    close_all,
    launch_node,
    resolve_binary,
    wait_until,
)
from roost.redis.server.process import HOST, ConfigValue, ServerError, ServerProcess

__all__ = ["SentinelGroup"]


class SentinelGroup(NodeGroup):
    """One primary, ``replicas`` replicas and ``sentinels`` sentinels on 127.0.0.1.

    Attributes:
        service: the name the sentinels monitor the primary under.
        nodes: the data nodes (``node-0`` is the first primary).
        sentinels: the sentinel processes.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        service: str = "roost",
        replicas: int = 1,
        sentinels: int = 3,
        quorum: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
        **options: Unpack[NodeOptions],
    ) -> None:
        """Describe a group; nothing runs until :meth:`start`.

        Args:
            root: directory for the nodes' directories (created).
            service: the monitored service name.
            replicas: how many replicas the primary has.
            sentinels: how many sentinels watch it.
            quorum: sentinels that must agree the primary is down.
            down_after_ms: silence after which a sentinel deems a node down.
            failover_timeout_ms: Sentinel's failover timeout (also the wait before a failed
                election is tried again, twice this).
            **options: how the data nodes run (:class:`NodeOptions`: ``proxied``,
                ``appendonly``, ``binary``, ``config``).
        """
        super().__init__(root, **options)
        self.service = service
        self.sentinels: list[Node] = []
        self._replicas = replicas
        self._sentinel_count = sentinels
        self._quorum = quorum
        self._down_after_ms = down_after_ms
        self._failover_timeout_ms = failover_timeout_ms

    def __repr__(self) -> str:
        return f"SentinelGroup({self.service}, nodes={self.nodes}, sentinels={self.sentinels})"

    def close(self) -> None:
        """Stop the sentinels, then every data node and proxy; raise the first failure."""
        sentinels, self.sentinels = self.sentinels, []
        try:
            close_all(sentinels)
        finally:
            super().close()

    def _build(self, timeout: float) -> None:
        primary = self._launch(lambda _name, announced: self._own(announced, None))
        for _ in range(self._replicas):
            self._launch(lambda _name, announced: self._own(announced, primary.address))
        sentinel_binary = self.root / "redis-sentinel"
        sentinel_binary.unlink(missing_ok=True)
        # The same binary runs in sentinel mode when started by that name.
        sentinel_binary.symlink_to(resolve_binary(self.binary))
        directives: dict[str, ConfigValue] = {
            "sentinel monitor": f"{self.service} {HOST} {primary.address[1]} {self._quorum}",
            "sentinel down-after-milliseconds": f"{self.service} {self._down_after_ms}",
            "sentinel failover-timeout": f"{self.service} {self._failover_timeout_ms}",
            "sentinel parallel-syncs": f"{self.service} 1",
        }
        for index in range(self._sentinel_count):
            name = f"sentinel-{index}"
            self.sentinels.append(
                launch_node(
                    name,
                    lambda port, _announced, name=name: ServerProcess(
                        self.root / name, port=port, config=directives, binary=sentinel_binary
                    ),
                    proxied=False,
                )
            )
        self.wait_stable(timeout)

    # -- addresses -----------------------------------------------------------------------

    @property
    def sentinel_addresses(self) -> list[Address]:
        """Where the sentinels listen."""
        return [node.address for node in self.sentinels]

    @property
    def url(self) -> str:
        """``redis+sentinel://`` URL naming every sentinel and the service."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinel_addresses)
        return f"redis+sentinel://{hosts}/{self.service}"

    def node_at(self, address: Address) -> Node:
        """The data node known by ``address``.

        Raises:
            ServerError: no data node has that address.
        """
        for node in self.nodes:
            if node.address == (address[0], int(address[1])):
                return node
        raise ServerError(f"no data node at {address[0]}:{address[1]}")

    def reported_primary(self) -> Address | None:
        """The primary address every live sentinel reports, or ``None`` while they differ."""
        seen: set[Address] = set()
        for sentinel in self._live(self.sentinels):
            reply = sentinel.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            if not reply:
                return None
            seen.add((str(reply[0]), int(reply[1])))
        return seen.pop() if len(seen) == 1 else None

    def primary(self, timeout: float = 10.0) -> Node:
        """The node the sentinels name as primary, once they agree and it says it is one."""

        def agreed() -> Node | None:
            address = self.reported_primary()
            if address is None:
                return None
            node = self.node_at(address)
            return node if node.alive and node.role() == "master" else None

        return wait_until(agreed, timeout, "primary the sentinels agree on", self._state)

    def replicas(self) -> list[Node]:
        """The data nodes other than the current primary (dead ones included)."""
        primary = self.primary()
        return [node for node in self.nodes if node is not primary]

    # -- faults --------------------------------------------------------------------------

    def kill_primary(self) -> Node:
        """SIGKILL the current primary and return it."""
        node = self.primary()
        node.kill()
        return node

    def restart(self, node: Node, *, as_replica: bool = True, timeout: float = 10.0) -> Node:
        """Start a stopped data node again, same port and data.

        Args:
            node: a data node of this group that is not running.
            as_replica: start it as a replica of the primary the sentinels name (unless that
                is this node); ``False`` starts it as the primary it was, and the sentinels
                demote it (the stale-primary case).
            timeout: seconds to wait for the server to answer.
        """
        primary = None
        if as_replica:
            primary = wait_until(self.reported_primary, timeout, "primary the sentinels agree on")
        source = primary if primary is not None and primary != node.address else None
        node.replace(self._data_server(node.name, node.port, self._own(node.address[1], source)))
        node.server.start(timeout)
        return node

    def failover(self) -> Node:
        """Ask a sentinel for ``SENTINEL FAILOVER``; return the primary being replaced.

        The sentinel asked is one that sees a replica fit to promote. Note that Sentinel does
        not demote the old primary at once: it keeps accepting writes (that the next full
        sync discards) until the sentinels reconfigure it, about 10 s later.

        Raises:
            redis.ResponseError: the sentinel refused (``INPROG``, ``NOGOODSLAVE``).
        """
        old = self.primary()
        sentinels = self._live(self.sentinels)
        ready = [sentinel for sentinel in sentinels if self._healthy_replicas(sentinel)]
        (ready or sentinels)[0].command("SENTINEL", "FAILOVER", self.service)
        return old

    # -- waiting -------------------------------------------------------------------------

    def wait_failover(self, old: Node, timeout: float = 30.0) -> Node:
        """Wait until a node other than ``old`` is primary and the group is stable; return it."""

        def moved() -> Address | None:
            address = self.reported_primary()
            return address if address is not None and address != old.address else None

        wait_until(moved, timeout, f"primary other than {old.name}", self._state)
        return self.wait_stable(timeout)

    def wait_stable(self, timeout: float = 30.0) -> Node:
        """Wait until the group is stable (see the module docstring); return the primary."""
        return wait_until(self._stable, timeout, "stable sentinel group", self._state)

    # -- internals -----------------------------------------------------------------------

    def _own(self, announced: int, replica_of: Address | None) -> dict[str, ConfigValue]:
        """A data node's own directives: where it replicates from, what it announces."""
        own: dict[str, ConfigValue] = {}
        if self._proxied:
            own["replica-announce-ip"] = HOST
            own["replica-announce-port"] = announced
        if replica_of is not None:
            own["replicaof"] = f"{replica_of[0]} {replica_of[1]}"
        return own

    def _stable(self) -> Node | None:
        address = self.reported_primary()
        if address is None:
            return None
        primary = self.node_at(address)
        if not primary.alive or primary.role() != "master":
            return None
        replicas = [node for node in self._live(self.nodes) if node is not primary]
        for node in replicas:
            info = node.info("replication")
            if (
                info["role"] != "slave"
                or int(info["master_port"]) != address[1]
                or info["master_link_status"] != "up"
            ):
                return None
        wanted = {node.address for node in replicas}
        others = len(self.sentinels) - 1
        seeing = 0
        for sentinel in self._live(self.sentinels):
            master = _pairs(sentinel.command("SENTINEL", "MASTER", self.service))
            if int(master["num-other-sentinels"]) < others:
                return None
            seeing += wanted <= self._healthy_replicas(sentinel)
        return primary if seeing >= self._quorum else None

    def _healthy_replicas(self, sentinel: Node) -> set[Address]:
        """The replicas ``sentinel`` would promote (it saw them linked to the primary)."""
        return {
            (str(replica["ip"]), int(replica["port"]))
            for replica in map(_pairs, sentinel.command("SENTINEL", "REPLICAS", self.service))
            if replica["flags"] == "slave" and replica["master-link-status"] == "ok"
        }

    def _state(self) -> str:
        parts: list[str] = []
        for node in self.nodes:
            if not node.alive:
                parts.append(f"{node.name}@{node.address[1]}: down")
                continue
            info = node.info("replication")
            link = f"->{info.get('master_port')} {info.get('master_link_status')}"
            parts.append(f"{node.name}@{node.address[1]}: {info['role']}{link}")
        reports = [
            sentinel.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            for sentinel in self._live(self.sentinels)
        ]
        return f"{'; '.join(parts)}; sentinels name {reports}"


def _pairs(reply: Any) -> dict[str, Any]:
    """A Sentinel reply (a flat list of names and values) as a dict."""
    items = list(reply)
    return dict(zip(items[::2], items[1::2], strict=True))
