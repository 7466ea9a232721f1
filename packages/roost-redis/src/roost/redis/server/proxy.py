"""A pausable TCP proxy on 127.0.0.1, to make a replication link lag, stall or break in tests.

:class:`TcpProxy` listens on a free loopback port and forwards every connection to a target
port, from an event loop in a thread of its own (so it keeps forwarding while the test's own
loop or thread is busy). It sorts its connections into two kinds of traffic:

- ``replication``: a connection whose client opened with ``REPLCONF``, ``PSYNC`` or ``SYNC``
  (a replica's link to its primary; the handshake's first ``PING`` passes before the sort);
- ``clients``: every other connection (clients, Sentinel's probes).

Each kind can be paused (bytes are read and held in both directions, nothing is delivered
until :meth:`TcpProxy.resume`), delayed (bytes from the server side are delivered
``seconds`` after they arrived, in order) or cut (its connections are aborted). The
topology fixtures put one proxy in front of each data node when started with
``proxied=True`` and make every node announce the proxy's port, so that replication links
pass through it: ``group.node.proxy.pause()`` stalls that node's outgoing replication
stream, ``set_delay(0.5)`` makes it lag.

Example:
    >>> with TcpProxy(primary.port) as proxy:  # doctest: +SKIP
    ...     proxy.pause()              # the replica stops receiving the stream
    ...     proxy.resume()
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeVar

from roost.redis.server.process import HOST

__all__ = ["TcpProxy", "Traffic"]

Traffic: TypeAlias = Literal["replication", "clients", "all"]
_T = TypeVar("_T")

# The first command of a chunk a replica sends during its handshake (RESP, any case).
_REPLICATION = re.compile(rb"\*\d+\r\n\$\d+\r\n(?:REPLCONF|PSYNC|SYNC)\r\n", re.IGNORECASE)
_CHUNK = 65536
_RECHECK = 0.02  # seconds between checks of a held chunk (pause lifted, delay changed)


@dataclass
class _Gate:
    """The state of one kind of traffic: open or paused, and the delay of replies."""

    opened: asyncio.Event = field(default_factory=asyncio.Event)
    delay: float = 0.0

    def __post_init__(self) -> None:
        self.opened.set()


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's and the server's transports."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    replication: bool = False

    def abort(self) -> None:
        for writer in (self.client, self.server):
            writer.transport.abort()


class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``127.0.0.1:target_port``; pause or delay on demand.

    Every method is thread-safe and returns once the change is in effect. A connection whose
    target refuses is closed at once (a dead server behind the proxy looks like a server that
    drops connections).
    """

    def __init__(self, target_port: int, *, port: int = 0) -> None:
        """Describe a proxy; nothing listens until :meth:`start`.

        Args:
            target_port: the loopback port to forward to.
            port: the port to listen on; 0 picks a free one.
        """
        self.target_port = target_port
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._gates: dict[str, _Gate] = {}
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []  # every socket opened, to see it closed
        self._closing = False

    def __repr__(self) -> str:
        return f"TcpProxy(port={self._port}, target_port={self.target_port})"

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The port the proxy listens on (fixed once started)."""
        return self._port

    def start(self) -> TcpProxy:
        """Start listening (in a daemon thread); no-op if started."""
        if self._loop is not None:
            return self
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"tcp-proxy-{self.target_port}", daemon=True
        )
        self._thread.start()
        self._call(self._listen())
        return self

    def close(self) -> None:
        """Abort every connection, stop listening and end the thread; no-op if closed."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._shutdown())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = None

    def pause(self, traffic: Traffic = "replication") -> None:
        """Hold every byte of ``traffic`` in both directions until :meth:`resume`."""
        self._call(self._set(traffic, paused=True))

    def resume(self, traffic: Traffic = "all") -> None:
        """Deliver what was held and forward ``traffic`` again."""
        self._call(self._set(traffic, paused=False))

    def set_delay(self, seconds: float, traffic: Traffic = "replication") -> None:
        """Deliver bytes from the server side ``seconds`` after they arrived (0: at once)."""
        if seconds < 0:
            raise ValueError("a delay cannot be negative")
        self._call(self._set(traffic, delay=seconds))

    def cut(self, traffic: Traffic = "all") -> int:
        """Abort the open connections of ``traffic``; return how many there were."""
        return self._call(self._cut(traffic))

    def connections(self, traffic: Traffic = "all") -> int:
        """How many connections of ``traffic`` are open."""
        return self._call(self._count(traffic))

    # -- internals (run on the proxy's loop) --------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the proxy is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        self._closing = False
        self._gates = {"replication": _Gate(), "clients": _Gate()}
        self._server = await asyncio.start_server(self._accept, HOST, self._port)
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        # Until the loop stops, connections keep arriving: the kernel may have accepted one
        # just before the listening socket closed, and asyncio makes its transport in a task
        # of its own, after this starts. Each is aborted as soon as it is accepted (see
        # _accept), and this waits until no such task is left and every socket opened is
        # closed (an aborted transport closes its socket on a later pass of the loop), so
        # that none is left for the garbage collector to close, with a warning.
        self._closing = True
        if self._server is not None:
            self._server.close()
        me = asyncio.current_task()
        for _ in range(800):  # at most about 8 s (a loaded machine is slow to close)
            for link in list(self._links):
                link.abort()
            for writer in self._writers:
                if _open(writer):
                    writer.transport.abort()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            busy = [t for t in asyncio.all_tasks() if t is not me]
            if not busy and not any(_open(w) for w in self._writers):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)  # the close callbacks scheduled by the last aborts
        self._writers.clear()

    def _kinds(self, traffic: Traffic) -> list[str]:
        return ["replication", "clients"] if traffic == "all" else [traffic]

    async def _set(
        self, traffic: Traffic, *, paused: bool | None = None, delay: float = -1
    ) -> None:
        for kind in self._kinds(traffic):
            gate = self._gates[kind]
            if paused is True:
                gate.opened.clear()
            elif paused is False:
                gate.opened.set()
            if delay >= 0:
                gate.delay = delay

    async def _cut(self, traffic: Traffic) -> int:
        links = [link for link in self._links if self._kind(link) in self._kinds(traffic)]
        for link in links:
            link.abort()
        return len(links)

    async def _count(self, traffic: Traffic) -> int:
        return sum(1 for link in self._links if self._kind(link) in self._kinds(traffic))

    def _track(self, writer: asyncio.StreamWriter) -> None:
        self._writers = [w for w in self._writers if _open(w)]
        self._writers.append(writer)

    @staticmethod
    def _kind(link: _Link) -> str:
        return "replication" if link.replication else "clients"

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._track(writer)
        if self._closing:
            writer.transport.abort()
            return
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._track(up_writer)
        link = _Link(client=writer, server=up_writer)
        self._links.add(link)
        pumps = [
            asyncio.create_task(self._pump(link, reader, up_writer, from_client=True)),
            asyncio.create_task(self._pump(link, up_reader, writer, from_client=False)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._links.discard(link)
            link.abort()

    async def _pump(
        self,
        link: _Link,
        source: asyncio.StreamReader,
        target: asyncio.StreamWriter,
        *,
        from_client: bool,
    ) -> None:
        """Copy ``source`` to ``target``, holding chunks while paused or delayed."""
        loop = asyncio.get_running_loop()
        held: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        sender = asyncio.create_task(self._deliver(link, held, target, from_client=from_client))
        try:
            while data := await source.read(_CHUNK):
                if from_client and not link.replication and _REPLICATION.match(data):
                    link.replication = True
                held.put_nowait((loop.time(), data))
        except OSError:
            pass
        finally:
            held.put_nowait(None)
        try:
            await sender  # what was read before the close is still delivered (when allowed)
        finally:
            sender.cancel()

    async def _deliver(
        self,
        link: _Link,
        held: asyncio.Queue[tuple[float, bytes] | None],
        target: asyncio.StreamWriter,
        *,
        from_client: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        while (item := await held.get()) is not None:
            arrived, data = item
            while True:
                gate = self._gates[self._kind(link)]
                await gate.opened.wait()
                wait = 0.0 if from_client else arrived + gate.delay - loop.time()
                if wait <= 0:
                    break
                await asyncio.sleep(min(wait, _RECHECK))
            try:
                target.write(data)
                await target.drain()
            except OSError:
                return


def _open(writer: asyncio.StreamWriter) -> bool:
    """Whether the socket under ``writer`` is still open."""
    sock = writer.transport.get_extra_info("socket")
    return sock is not None and sock.fileno() != -1
