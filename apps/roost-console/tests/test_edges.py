"""The console's edges: every response carries the security headers, whoever answers it, and
the token exchange never sends a browser to another site."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from starlette.testclient import TestClient

from roost.console import create_app, serve_in_thread
from roost.console.security import CSP, GuardConfig, local_path
from roost.runtime import RoostSettings

BASE = "http://127.0.0.1:8766"
ORIGIN = {"origin": BASE}
TOKEN = "edge-token-0123456789abcdef"


def assert_secured(headers: Any, what: str) -> None:
    assert headers.get("content-security-policy") == CSP, what
    assert headers.get("x-content-type-options") == "nosniff", what
    assert headers.get("x-frame-options") == "DENY", what
    assert headers.get("referrer-policy") == "same-origin", what
    assert headers.get("cache-control") == "no-store", what


def raw_request(base: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are to the server; parse the status line and headers it answers."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


@pytest.fixture
def served(settings: RoostSettings) -> Iterator[str]:
    with serve_in_thread(settings) as url:
        yield url


@pytest.fixture
def served_with_token(settings: RoostSettings) -> Iterator[str]:
    with serve_in_thread(settings, token=TOKEN) as url:
        yield url


# -- headers on every response ---------------------------------------------------------------


def test_413_carries_the_security_headers(client: TestClient) -> None:
    token = client.get("/api/csrf").json()["csrf_token"]
    for path in ("/api/retry/x", "/actions/retry/x"):
        r = client.post(
            path,
            content=b"x" * 200_000,
            headers={**ORIGIN, "x-csrf-token": token, "content-type": "application/json"},
        )
        assert r.status_code == 413, path
        assert_secured(r.headers, path)


def test_413_over_http_carries_the_security_headers(served: str) -> None:
    host = urlsplit(served).netloc
    body = b"x" * 100_000
    status, headers, _ = raw_request(
        served,
        b"POST /api/retry/x HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body,
    )
    assert status == 413
    assert_secured(headers, "413")


def test_an_exception_in_the_middleware_is_a_500_with_the_headers(
    settings: RoostSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: GuardConfig, host: str) -> bool:
        raise RuntimeError("a bug in the guard")

    monkeypatch.setattr(GuardConfig, "host_ok", broken)
    app = create_app(settings, port=8766)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        for path in ("/", "/api/counts", "/static/console.css"):
            r = c.get(path)
            assert r.status_code == 500, path
            assert "a bug in the guard" not in r.text
            assert r.headers["content-security-policy"] == CSP, path
            assert r.headers["x-content-type-options"] == "nosniff", path


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon in this header\r\n\r\n",
        b"NOT A REQUEST LINE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
    ],
    ids=["bad-header", "bad-request-line", "bad-content-length"],
)
def test_requests_the_server_rejects_carry_the_headers(served: str, request_bytes: bytes) -> None:
    status, headers, _ = raw_request(served, request_bytes)
    assert status == 400
    assert_secured(headers, "uvicorn's 400")


def test_an_upgrade_request_is_answered_by_the_app(served: str) -> None:
    host = urlsplit(served).netloc.encode()
    status, headers, _ = raw_request(
        served,
        b"GET /api/counts HTTP/1.1\r\nHost: " + host + b"\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    assert status == 200  # served as a plain request: no WebSocket behind the guard
    assert_secured(headers, "upgrade")


def test_guard_refusals_carry_the_headers(served_with_token: str) -> None:
    host = urlsplit(served_with_token).netloc.encode()
    cases = {
        b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n": 400,
        b"GET /api/counts HTTP/1.1\r\nHost: " + host + b"\r\n\r\n": 401,
        b"GET /work HTTP/1.1\r\nHost: " + host + b"\r\n\r\n": 303,
        b"DELETE /api/counts HTTP/1.1\r\nHost: "
        + host
        + b"\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\r\n\r\n": 405,
    }
    for request, expected in cases.items():
        status, headers, _ = raw_request(served_with_token, request)
        assert status == expected, request
        assert_secured(headers, str(expected))


# -- the token exchange and login redirects ---------------------------------------------------


def _stays_here(location: str) -> None:
    base = "http://127.0.0.1:8766/"
    assert location.startswith("/") and not location.startswith("//"), location
    assert "\\" not in location and not re.search(r"[\x00-\x20\x7f]", location), location
    assert urlsplit(urljoin(base, location)).netloc == "127.0.0.1:8766", location


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "//evil.example",
        "/%2F%2Fevil.example/",
        "/%2fevil.example",
        "/%5Cevil.example",
        "/%5C%5Cevil.example",
        "/\\evil.example",
        "/\\/evil.example",
        "/%09/evil.example",
        "/%0A/evil.example",
        "///evil.example",
    ],
)
def test_the_token_exchange_never_redirects_off_site(served_with_token: str, target: str) -> None:
    host = urlsplit(served_with_token).netloc.encode()
    status, headers, _ = raw_request(
        served_with_token,
        b"GET " + target.encode() + b"?token=" + TOKEN.encode() + b" HTTP/1.1\r\n"
        b"Host: " + host + b"\r\n\r\n",
    )
    if status == 400:  # the server refused the request line itself: nothing to follow
        return
    assert status == 303, target
    _stays_here(headers["location"])
    assert "roost_auth_" in headers["set-cookie"]


def test_the_token_exchange_keeps_an_ordinary_path(served_with_token: str) -> None:
    host = urlsplit(served_with_token).netloc.encode()
    status, headers, _ = raw_request(
        served_with_token,
        b"GET /work/a%20b?state=dead&token=" + TOKEN.encode() + b" HTTP/1.1\r\n"
        b"Host: " + host + b"\r\n\r\n",
    )
    assert status == 303
    assert headers["location"] == "/work/a%20b?state=dead"


@pytest.mark.parametrize(
    "nxt",
    ["//evil.example/", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "https://e.x/"],
)
def test_login_never_redirects_off_site(world: Any, nxt: str) -> None:
    app = create_app(world.settings, token=TOKEN, port=8766)
    with TestClient(app, base_url=BASE, follow_redirects=False) as c:
        page = c.get("/login")
        token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
        assert token
        r = c.post(
            "/login",
            params={"next": nxt},
            data={"csrf_token": token.group(1), "token": TOKEN},
            headers=ORIGIN,
        )
    assert r.status_code == 303
    _stays_here(r.headers["location"])


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/work?state=dead", "/work?state=dead"),
        ("/work/a%2Fb", "/work/a%2Fb"),
        ("/", "/"),
        ("", "/"),
        ("work", "/"),
        ("//x", "/"),
        ("/\\x", "/"),
        ("/a b", "/"),
        ("/a\tb", "/"),
        ("/ä", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_local_path(target: str, expected: str) -> None:
    assert local_path(target) == expected
