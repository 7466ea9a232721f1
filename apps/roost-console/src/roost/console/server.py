"""Serving the console with uvicorn: :func:`serve` (blocking) and :func:`serve_in_thread`."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from roost.console.app import create_app
from roost.console.security import DEFAULT_HOSTS, NO_STORE, SECURITY_HEADERS, check_token
from roost.runtime.errors import BadInput, RoostError

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from roost.runtime.backends import WorkBackend
    from roost.runtime.settings import RoostSettings

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "GuardedH11Protocol",
    "bind_socket",
    "check_bind",
    "console_url",
    "is_loopback",
    "serve",
    "serve_in_thread",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8766


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ``::1``)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without an access token.

    Raises:
        BadInput: ``host`` is not a loopback address and ``token`` is ``None``, or the
            token is too short.
    """
    try:
        check_token(token)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    if token is None and not is_loopback(host):
        raise BadInput(
            f"refusing to serve the console on {host}: it is reachable from other machines. "
            "Bind 127.0.0.1 (the default), or set an access token"
        )


def _host_names(host: str, extra: Iterable[str] | None) -> list[str]:
    names: list[str] = list(DEFAULT_HOSTS)
    bare = host.strip().strip("[]").lower()
    if bare not in ("0.0.0.0", "::", ""):
        try:
            ip = ipaddress.ip_address(bare)
        except ValueError:
            names.append(bare)
        else:
            names.append(f"[{ip}]" if ip.version == 6 else str(ip))
    names += list(extra or ())
    return names


def bind_socket(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> socket.socket:
    """Open the listening socket (``port=0`` picks a free one).

    Raises:
        RoostError: the address cannot be used (in use, not an address of this machine).
    """
    name = host.strip().strip("[]")
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise RoostError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise RoostError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def console_url(host: str, port: int, token: str | None = None) -> str:
    """The URL to open, with ``?token=`` when there is a token.

    The console trades the token parameter for a cookie and drops it from the address bar.
    """
    name = host.strip()
    if name in ("0.0.0.0", "::", ""):
        name = "127.0.0.1"
    elif ":" in name and not name.startswith("["):
        name = f"[{name}]"
    tail = "?" + urlencode({"token": token}) if token else ""
    return f"http://{name}:{port}/{tail}"


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with the security headers on the 400 it sends itself.

    uvicorn answers a request it cannot parse (a malformed request line or header, a header
    too large) before any application code runs; everything else reaches the app, whose
    outermost layer adds the headers.
    """

    def send_400_response(self, msg: str) -> None:
        """Answer an unparseable request with 400, the security headers, and close."""
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"connection", b"close"),
            *SECURITY_HEADERS,
            NO_STORE,
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=msg.encode("ascii", "replace")),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


def _bound_server(
    settings: RoostSettings | WorkBackend,
    host: str,
    port: int,
    token: str | None,
    allowed_hosts: Iterable[str] | None,
    log_level: str,
) -> tuple[socket.socket, int, uvicorn.Server]:
    """Check the address, bind it, and build the server: its socket, port and server."""
    check_bind(host, token)
    sock = bind_socket(host, port)
    port = sock.getsockname()[1]
    names = _host_names(host, allowed_hosts)
    app = create_app(settings, token=token, allowed_hosts=names, port=port)
    return sock, port, _server(app, log_level)


def _server(app: ASGIApp, log_level: str) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        http=GuardedH11Protocol,
        ws="none",
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=2,
        proxy_headers=False,
        server_header=False,
        access_log=False,
    )
    return uvicorn.Server(config)


def serve(
    settings: RoostSettings | WorkBackend,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    open_browser: bool = False,
    allowed_hosts: Iterable[str] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve the console until Ctrl-C (blocking); return once it has shut down.

    Prints one line with the URL to stderr once it listens. SIGTERM ends the process (after
    the same clean shutdown), as uvicorn re-raises it.

    Args:
        settings: which Redis, prefix, namespace and artifact root to show (or a backend).
        host: the address to listen on; anything but loopback needs ``token``.
        port: the port (``0`` picks a free one).
        token: the access token every route then requires (16+ characters).
        open_browser: open the console in the default browser once it listens.
        allowed_hosts: extra host names accepted in the ``Host`` header (for a console
            reached by a name other than ``host``; ``127.0.0.1``, ``localhost``, ``[::1]``
            and ``host`` itself are always accepted).
        log_level: uvicorn's log level.

    Raises:
        BadInput: a non-loopback ``host`` without a token, or a bad token.
        RoostError: the address is in use or cannot be bound.
    """
    sock, port, server = _bound_server(settings, host, port, token, allowed_hosts, log_level)
    url = console_url(host, port, token)

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            print(f"Roost console on {url}  (Ctrl-C to stop)", file=sys.stderr, flush=True)
            if open_browser:
                webbrowser.open(url)

    threading.Thread(target=announce, name="roost-console-announce", daemon=True).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled: we are done
        pass
    finally:
        sock.close()


@contextlib.contextmanager
def serve_in_thread(
    settings: RoostSettings | WorkBackend,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    token: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    log_level: str = "warning",
) -> Generator[str]:
    """Serve the console in a background thread; yield its base URL (``http://host:port``).

    For tests and for embedding the console in another program. Same checks as
    :func:`serve`. A :class:`WorkBackend` passed here is used from the server's own event
    loop, so pass settings unless the backend is not connected yet.
    """
    sock, port, server = _bound_server(settings, host, port, token, allowed_hosts, log_level)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="roost-console", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RoostError("the console did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield console_url(host, port).rstrip("/")
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
