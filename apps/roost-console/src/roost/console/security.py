r"""The console's guard: Host check, access token, CSRF and same-origin checks, headers.

One pure ASGI middleware, :class:`Guard`, runs before every route:

1. **Host.** The ``Host`` header must name an allowed host (``127.0.0.1``, ``localhost``,
   ``[::1]`` by default) and, when the console knows its port, that port. Anything else gets
   400: a page on another site whose name resolves to 127.0.0.1 (DNS rebinding) is refused.
2. **Access token** (only when one is configured). Every route except ``/login`` and
   ``/static/`` needs it: an ``Authorization: Bearer <token>`` header, or the session cookie
   that ``/login`` (form) or a ``?token=`` URL parameter sets. Without it, pages redirect to
   ``/login`` and everything else (the API, the live stream, artifacts, ``/metrics``) gets
   401.
3. **State changes.** Only ``GET``/``HEAD`` (which never change state) and ``POST`` are
   allowed. A ``POST`` needs an ``Origin`` header equal to the console's own origin (or, if
   the browser sent no ``Origin``, a same-origin ``Referer``) and a CSRF token, in the
   ``X-CSRF-Token`` header or a ``csrf_token`` form field. The token is the HMAC of the
   browser's ``roost_csrf`` cookie under a per-process secret (signed double submit); pages
   embed it and ``GET /api/csrf`` returns it.

:class:`SecureHeaders` wraps the whole application, outside Starlette's own error handling,
and puts the security headers on **every** response: pages, the guard's refusals, Starlette's
413 and 500, and a plain 500 of its own for an exception that escapes everything else. They
are a Content-Security-Policy without inline script or style, ``X-Content-Type-Options:
nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin``, the cross-origin
opener and resource policies, and ``Cache-Control: no-store`` (static files may be cached).
:data:`SECURITY_HEADERS` is that list; the server adds it to the few answers uvicorn makes
before the application sees a request (a malformed request line, for one).

Redirects go only to a path on this console (:func:`local_path`): never ``//host``,
``/\host`` or anything a browser could read as another site.

Request bodies are capped by Starlette's ``max_body_size`` (see :func:`create_app`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CSP",
    "DEFAULT_HOSTS",
    "RAW_CSP",
    "SECURITY_HEADERS",
    "Guard",
    "GuardConfig",
    "SecureHeaders",
    "check_token",
    "local_path",
    "new_token",
]


DEFAULT_HOSTS = ("127.0.0.1", "localhost", "[::1]")
"""Host names the console answers to unless told otherwise."""

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""The Content-Security-Policy of every page: only the console's own script and CSS."""

RAW_CSP = "default-src 'none'; sandbox"
"""The policy of raw artifact content: nothing runs, even if a browser renders it."""

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
"""The headers every response carries (a response may set a stricter CSP of its own)."""

NO_STORE = (b"cache-control", b"no-store")

MIN_TOKEN_LENGTH = 16
_PATH_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%?"
)
SAFE_METHODS = frozenset({"GET", "HEAD"})
OPEN_PATHS = ("/login", "/static/")


def new_token() -> str:
    """Return a fresh random access token (URL-safe, 32 characters)."""
    return secrets.token_urlsafe(24)


def check_token(token: str | None) -> str | None:
    """Validate an access token: ``None``, or 16+ printable ASCII characters without spaces.

    Raises:
        ValueError: the token is too short or has other characters.
    """
    if token is None:
        return None
    if len(token) < MIN_TOKEN_LENGTH or not all(33 <= ord(c) < 127 for c in token):
        raise ValueError(
            f"the console token must be at least {MIN_TOKEN_LENGTH} printable characters "
            "without spaces (make one with: python -c 'import secrets; "
            "print(secrets.token_urlsafe())')"
        )
    return token


def local_path(target: str) -> str:
    r"""``target`` if it is a path on this console, else ``"/"``: the only safe redirect.

    Accepted: an absolute path (with an optional query) of URL-safe ASCII characters whose
    second character is not ``/``. Everything a browser could read as another site is
    refused: ``//host``, ``/\host`` (browsers read ``\`` as ``/``), a scheme, and control or
    space characters (browsers drop tabs and newlines, so ``/<TAB>/host`` is ``//host``).
    Percent-encoded characters stay encoded, so ``/%2F%2Fhost`` is a path on this console.
    """
    if (
        len(target) > 2000
        or not target.startswith("/")
        or target.startswith("//")
        or not _PATH_CHARS.issuperset(target)
    ):
        return "/"
    return target


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``"127.0.0.1:8766"`` -> ("127.0.0.1", 8766); ``"[::1]"`` -> ("[::1]", None)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, sep, rest = value.partition("]")
        name += sep
        if not sep:
            return None
    else:
        name, _, port_text = value.partition(":")
        rest = f":{port_text}" if ":" in value else ""
    if not name:
        return None
    if not rest:
        return name, None
    port_text = rest[1:]
    if not rest.startswith(":") or not port_text.isdigit() or len(port_text) > 5:
        return None
    return name, int(port_text)


@dataclass
class GuardConfig:
    """What the guard enforces.

    Attributes:
        allowed_hosts: host names (``[::1]`` with brackets) accepted in the Host header.
        port: the port the console listens on; ``None`` accepts any port.
        token: the access token; ``None`` means loopback-only use without a token.
        secret: per-process key for CSRF tokens and session cookies.
    """

    allowed_hosts: Iterable[str] = DEFAULT_HOSTS
    port: int | None = None
    token: str | None = None
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def __post_init__(self) -> None:
        self.allowed_hosts = frozenset(h.strip().lower() for h in self.allowed_hosts)
        check_token(self.token)

    @property
    def suffix(self) -> str:
        """Cookie name suffix: browsers share cookies across ports, consoles must not."""
        return f"_{self.port}" if self.port else ""

    @property
    def csrf_cookie(self) -> str:
        """Name of the CSRF cookie."""
        return f"roost_csrf{self.suffix}"

    @property
    def auth_cookie(self) -> str:
        """Name of the session cookie set after a login."""
        return f"roost_auth{self.suffix}"

    def host_ok(self, host: str) -> bool:
        """Whether a Host header names this console."""
        parsed = _split_host(host)
        if parsed is None:
            return False
        name, port = parsed
        if name not in self.allowed_hosts:
            return False
        if self.port is None:
            return True
        return port == self.port or (port is None and self.port == 80)

    def csrf_for(self, cookie: str) -> str:
        """The CSRF token that goes with a CSRF cookie value."""
        return hmac.new(self.secret, b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()

    def session_value(self) -> str:
        """The session cookie value proving the token was presented (not the token itself)."""
        assert self.token is not None
        return hmac.new(self.token.encode(), b"roost-console-session", "sha256").hexdigest()

    def token_matches(self, candidate: str) -> bool:
        """Constant-time comparison with the access token."""
        return self.token is not None and hmac.compare_digest(
            candidate.encode(), self.token.encode()
        )


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[name] = f"{out[name]}; {text}" if name == "cookie" and name in out else text
    return out


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header counts as no cookies
        return {}
    return {k: m.value for k, m in jar.items()}


def _cookie_header(name: str, value: str) -> tuple[bytes, bytes]:
    return (
        b"set-cookie",
        f"{name}={value}; Path=/; HttpOnly; SameSite=Strict".encode("latin-1"),
    )


async def _answer(
    send: Send, status: int, body: bytes, ctype: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _plain(send: Send, status: int, text: str) -> None:
    await _answer(send, status, text.encode(), b"text/plain; charset=utf-8", [])


async def _json(
    send: Send, status: int, payload: dict[str, str], extra: list[tuple[bytes, bytes]]
) -> None:
    await _answer(send, status, json.dumps(payload).encode(), b"application/json", extra)


async def _redirect(send: Send, location: str, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"location", local_path(location).encode("ascii")), *extra]
    await _answer(send, 303, b"", b"text/plain; charset=utf-8", headers)


class SecureHeaders:
    """The outermost layer: :data:`SECURITY_HEADERS` on every response, whoever sends it.

    Headers a response already has are kept (raw artifacts set a stricter CSP). An
    exception that reaches this layer before a response started is answered with a plain
    500 (with the headers) and re-raised, so the server logs it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request; add the headers to its response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cache = scope.get("path", "").startswith("/static/")
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in have]
                if not cache and NO_STORE[0] not in have:
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if not started:
                await _plain(send_with_headers, 500, "Internal Server Error")
            raise


class Guard:
    """The ASGI middleware enforcing :class:`GuardConfig` (see the module docstring)."""

    def __init__(self, app: ASGIApp, config: GuardConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it on (with a new CSRF cookie if it had none)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cfg = self.config
        path: str = scope["path"]
        method: str = scope["method"]
        headers = _headers(scope)

        if not cfg.host_ok(headers.get("host", "")):
            await _plain(send, 400, "Bad Request: unknown Host header")
            return

        cookies = _cookies(headers)
        set_cookies: list[tuple[bytes, bytes]] = []
        csrf_cookie = cookies.get(cfg.csrf_cookie, "")
        if len(csrf_cookie) != 32 or not all(c in "0123456789abcdef" for c in csrf_cookie):
            csrf_cookie = secrets.token_hex(16)
            set_cookies.append(_cookie_header(cfg.csrf_cookie, csrf_cookie))
        state = scope.setdefault("state", {})
        state["csrf_token"] = cfg.csrf_for(csrf_cookie)
        state["authenticated"] = cfg.token is None

        if cfg.token is not None and not path.startswith(OPEN_PATHS):
            if not await self._authenticate(scope, headers, cookies, send):
                return
        state["authenticated"] = True

        if method not in SAFE_METHODS:
            if method != "POST":
                await _plain(send, 405, "Method Not Allowed")
                return
            replay = await self._check_post(scope, headers, receive, send, state)
            if replay is None:
                return
            receive = replay

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start" and set_cookies:
                message["headers"] = list(message.get("headers", [])) + set_cookies
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    async def _authenticate(
        self, scope: Scope, headers: dict[str, str], cookies: dict[str, str], send: Send
    ) -> bool:
        """Return True when the request carries the token; else answer it and return False."""
        cfg = self.config
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and cfg.token_matches(auth[7:].strip()):
            return True
        session = cookies.get(cfg.auth_cookie, "")
        if session and hmac.compare_digest(session, cfg.session_value()):
            return True
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        path: str = scope["path"]
        if scope["method"] in SAFE_METHODS and "token" in query:
            if cfg.token_matches(query["token"]):
                # Trade the URL parameter for a cookie, and drop it from the address bar:
                # back to the same path, as the browser sent it (still percent-encoded).
                raw = scope.get("raw_path") or path.encode()
                rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
                location = raw.decode("latin-1") + (f"?{rest}" if rest else "")
                cookie = _cookie_header(cfg.auth_cookie, cfg.session_value())
                await _redirect(send, location, [cookie])
                return False
        if path.startswith(("/api/", "/artifacts/", "/fragments/")) or (
            path == "/metrics" or scope["method"] not in SAFE_METHODS
        ):
            await _json(
                send,
                401,
                {"error": "this console needs its access token", "kind": "unauthorized"},
                [(b"www-authenticate", b'Bearer realm="roost"')],
            )
            return False
        await _redirect(send, "/login?" + urlencode({"next": path}), [])
        return False

    async def _check_post(
        self,
        scope: Scope,
        headers: dict[str, str],
        receive: Receive,
        send: Send,
        state: dict[str, object],
    ) -> Receive | None:
        """Check Origin/Referer and the CSRF token; return a receive that replays the body."""
        scheme = scope.get("scheme", "http")
        origin = f"{scheme}://{headers.get('host', '')}".lower()
        sent_origin = headers.get("origin")
        if sent_origin is not None:
            same = sent_origin.lower() == origin
        else:
            referer = headers.get("referer", "")
            parts = urlsplit(referer)
            same = bool(referer) and f"{parts.scheme}://{parts.netloc}".lower() == origin
        if not same:
            await _json(
                send,
                403,
                {
                    "error": "cross-origin request refused (Origin must be this console)",
                    "kind": "forbidden",
                },
                [],
            )
            return None

        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        token = headers.get("x-csrf-token")
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if token is None and ctype == "application/x-www-form-urlencoded":
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            token = form.get("csrf_token")
        expected = str(state["csrf_token"])
        if not token or not hmac.compare_digest(token, expected):
            await _json(
                send,
                403,
                {
                    "error": "missing or wrong CSRF token; reload the page and try again",
                    "kind": "forbidden",
                },
                [],
            )
            return None

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay
