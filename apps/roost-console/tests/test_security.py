"""The console's security model, one test (or more) per rule, against a real Redis."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from roost.console import check_bind, create_app, serve
from roost.console.security import CSP
from roost.console.server import bind_socket, is_loopback
from roost.console.state import make_templates
from roost.runtime import BadInput, RoostError, RoostSettings

BASE = "http://127.0.0.1:8766"
ORIGIN = {"origin": BASE}
TOKEN = "s3cret-token-for-tests-0123456789"
DEAD = {"engine": "hashchain", "payload": {"mode": "raise", "steps": 2}, "max_attempts": 1}


# -- binding ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_hosts_need_no_token(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", ""])
def test_non_loopback_bind_is_refused_without_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(BadInput, match="refusing to serve"):
        check_bind(host, None)
    check_bind(host, TOKEN)  # with a token it is allowed


def test_serve_refuses_before_listening(settings: RoostSettings) -> None:
    # serve() would block forever if it started; it must raise first.
    with pytest.raises(BadInput, match="refusing to serve"):
        serve(settings, host="0.0.0.0", port=0)


def test_short_tokens_are_refused(settings: RoostSettings) -> None:
    with pytest.raises(BadInput, match="at least 16"):
        check_bind("0.0.0.0", "short")
    with pytest.raises(ValueError, match="at least 16"):
        create_app(settings, token="has spaces in it, 0123456789")


def test_a_port_in_use_is_a_clear_error() -> None:
    first = bind_socket("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        with pytest.raises(RoostError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind_socket("127.0.0.1", port)
    finally:
        first.close()


# -- Host header (DNS rebinding) ------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8766", "localhost:8766", "[::1]:8766", "LOCALHOST:8766"]
)
def test_allowed_hosts_are_served(client: TestClient, host: str) -> None:
    r = client.get("/api/counts", headers={"host": host})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:8766",  # a rebinding attacker's name resolving to 127.0.0.1
        "127.0.0.1:9999",  # the right name on another port
        "127.0.0.1.evil.example:8766",
        "localhost:8766@evil",
        "",
        "[::1",
    ],
)
def test_other_hosts_get_400(client: TestClient, host: str) -> None:
    for path in ("/", "/api/counts", "/api/stream", "/static/console.css"):
        r = client.get(path, headers={"host": host})
        assert r.status_code == 400, (path, host)
        assert "Host" in r.text


def test_extra_allowed_hosts(settings: RoostSettings) -> None:
    app = create_app(settings, allowed_hosts=["roost.internal"], port=8766)
    with TestClient(app, base_url="http://roost.internal:8766") as c:
        assert c.get("/api/counts").status_code == 200
        assert c.get("/api/counts", headers={"host": "127.0.0.1:8766"}).status_code == 400


# -- access token ---------------------------------------------------------------------------


@pytest.fixture
def tclient(world: Any) -> Iterator[TestClient]:
    app = create_app(world.settings, token=TOKEN, port=8766)
    with TestClient(app, base_url=BASE, follow_redirects=False) as c:
        yield c


@pytest.mark.parametrize(
    "path",
    [
        "/api/counts",
        "/api/overview",
        "/api/work",
        "/api/events",
        "/api/stream",
        "/api/csrf",
        "/api/artifacts/" + "a" * 64,
        "/artifacts/" + "a" * 64 + "/raw",
        "/fragments/overview",
        "/fragments/work",
        "/fragments/timeline/abc",
    ],
)
def test_token_is_required_on_api_stream_and_artifacts(tclient: TestClient, path: str) -> None:
    r = tclient.get(path)
    assert r.status_code == 401
    assert r.json()["kind"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/", "/work", "/events", "/failed", "/work/abc"])
def test_pages_without_token_redirect_to_login(tclient: TestClient, path: str) -> None:
    r = tclient.get(path)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=")
    assert "csrf" not in r.text  # nothing of the page leaks


def test_posts_without_token_are_refused(tclient: TestClient, world: Any) -> None:
    work_id = world.dead
    r = tclient.post(f"/api/retry/{work_id}", headers=ORIGIN)
    assert r.status_code == 401
    r = tclient.post("/actions/bulk", data={"action": "retry", "state": "dead"}, headers=ORIGIN)
    assert r.status_code == 401
    with TestClient(tclient.app, base_url=BASE) as c:
        r = c.get(f"/api/work/{work_id}", headers={"authorization": f"Bearer {TOKEN}"})
        assert r.json()["meta"]["state"] == "dead"


def test_bearer_header_opens_every_route(tclient: TestClient) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert tclient.get("/api/counts", headers=auth).status_code == 200
    assert tclient.get("/", headers=auth).status_code == 200
    wrong = {"authorization": "Bearer " + "x" * len(TOKEN)}
    assert tclient.get("/api/counts", headers=wrong).status_code == 401


def test_token_url_parameter_becomes_a_cookie(tclient: TestClient) -> None:
    r = tclient.get(f"/work?state=dead&token={TOKEN}")
    assert r.status_code == 303
    assert r.headers["location"] == "/work?state=dead"  # token dropped from the address bar
    cookie = r.headers["set-cookie"]
    assert "roost_auth_8766=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie  # the cookie holds a derived value, not the token
    assert tclient.get("/work?state=dead").status_code == 200
    assert tclient.get("/api/counts").status_code == 200


def test_wrong_token_parameter_is_refused(tclient: TestClient) -> None:
    r = tclient.get("/api/counts?token=" + "y" * 20)
    assert r.status_code == 401


def test_login_form(tclient: TestClient) -> None:
    page = tclient.get("/login?next=/failed")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert token
    bad = tclient.post(
        "/login?next=/failed",
        data={"csrf_token": token.group(1), "token": "nope"},
        headers=ORIGIN,
    )
    assert bad.status_code == 401
    assert "not this console" in bad.text
    good = tclient.post(
        "/login?next=/failed",
        data={"csrf_token": token.group(1), "token": TOKEN},
        headers=ORIGIN,
    )
    assert good.status_code == 303
    assert good.headers["location"] == "/failed"
    assert tclient.get("/failed").status_code == 200


def test_login_refuses_offsite_next(tclient: TestClient) -> None:
    page = tclient.get("/login")
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert token
    r = tclient.post(
        "/login?next=//evil.example/",
        data={"csrf_token": token.group(1), "token": TOKEN},
        headers=ORIGIN,
    )
    assert r.headers["location"] == "/"


def test_static_and_login_are_open(tclient: TestClient) -> None:
    assert tclient.get("/static/console.css").status_code == 200
    assert tclient.get("/login").status_code == 200


# -- CSRF and same origin ---------------------------------------------------------------------


def _csrf(client: TestClient) -> str:
    return client.get("/api/csrf").json()["csrf_token"]


def _state(client: TestClient, work_id: str) -> str:
    return client.get(f"/api/work/{work_id}").json()["meta"]["state"]


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"origin": BASE}, "no CSRF token"),
        ({"origin": BASE, "x-csrf-token": "0" * 64}, "wrong CSRF token"),
        ({"x-csrf-token": "GOOD"}, "no Origin or Referer"),
        ({"origin": "http://evil.example", "x-csrf-token": "GOOD"}, "cross-site Origin"),
        ({"origin": "null", "x-csrf-token": "GOOD"}, "opaque Origin"),
        ({"origin": "http://127.0.0.1:9999", "x-csrf-token": "GOOD"}, "other port"),
        ({"referer": "http://evil.example/x", "x-csrf-token": "GOOD"}, "cross-site Referer"),
    ],
)
def test_state_changes_need_csrf_and_same_origin(
    wclient: TestClient, world: Any, headers: dict[str, str], why: str
) -> None:
    token = _csrf(wclient)
    sent = {k: (token if v == "GOOD" else v) for k, v in headers.items()}
    r = wclient.post(f"/api/retry/{world.dead}", headers=sent)
    assert r.status_code == 403, why
    assert r.json()["kind"] == "forbidden"
    assert _state(wclient, world.dead) == "dead", why


def test_csrf_token_of_another_browser_is_refused(wclient: TestClient, world: Any) -> None:
    with TestClient(wclient.app, base_url=BASE) as other:
        foreign = _csrf(other)
    _csrf(wclient)  # this client has its own cookie
    r = wclient.post(f"/api/retry/{world.dead}", headers={**ORIGIN, "x-csrf-token": foreign})
    assert r.status_code == 403
    assert _state(wclient, world.dead) == "dead"


def test_same_origin_with_token_changes_state(
    client: TestClient, seed: Callable[..., list[str]]
) -> None:
    (work_id,) = seed([DEAD])
    r = client.post(f"/api/retry/{work_id}", headers={**ORIGIN, "x-csrf-token": _csrf(client)})
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["state"] == "queued"


def test_same_origin_referer_is_accepted_without_origin(
    client: TestClient, seed: Callable[..., list[str]]
) -> None:
    (work_id,) = seed([DEAD])
    headers = {"referer": f"{BASE}/work/{work_id}", "x-csrf-token": _csrf(client)}
    assert client.post(f"/api/retry/{work_id}", headers=headers).status_code == 200
    assert _state(client, work_id) == "queued"


def test_form_field_csrf_token(client: TestClient, seed: Callable[..., list[str]]) -> None:
    (work_id,) = seed([DEAD])
    data = {"csrf_token": _csrf(client), "confirmed": "1"}
    r = client.post(f"/actions/retry/{work_id}", data=data, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 303
    assert _state(client, work_id) == "queued"


def test_get_never_changes_state(wclient: TestClient, world: Any) -> None:
    work_id = world.dead
    for path in (f"/api/retry/{work_id}", f"/actions/retry/{work_id}", f"/api/cancel/{work_id}"):
        assert wclient.get(path).status_code in (404, 405), path
    for method in ("PUT", "DELETE", "PATCH"):
        r = wclient.request(method, f"/api/retry/{work_id}", headers=ORIGIN)
        assert r.status_code == 405
    assert _state(wclient, work_id) == "dead"


# -- bodies, artifacts, headers, escaping ---------------------------------------------------


def test_request_bodies_are_size_limited(client: TestClient) -> None:
    token = _csrf(client)
    r = client.post(
        "/api/replay/x",
        content=b"{" + b" " * 200_000 + b"}",
        headers={**ORIGIN, "x-csrf-token": token, "content-type": "application/json"},
    )
    assert r.status_code == 413


@pytest.mark.parametrize(
    "artifact_id",
    ["abc", "A" * 64, "g" * 64, "a" * 63, "a" * 65, "..%2F..%2Fetc%2Fpasswd", "a" * 64 + ".json"],
)
def test_artifact_ids_are_validated(client: TestClient, artifact_id: str) -> None:
    for path in (
        f"/artifacts/{artifact_id}/raw",
        f"/artifacts/{artifact_id}",
        f"/api/artifacts/{artifact_id}",
    ):
        r = client.get(path)
        assert r.status_code in (400, 404), (path, r.status_code)
        assert "Traceback" not in r.text


def test_artifact_kind_is_validated(client: TestClient) -> None:
    r = client.get("/artifacts/" + "a" * 64 + "/raw?kind=../x")
    assert r.status_code == 400
    assert "invalid artifact kind" in r.text


def _artifacts(client: TestClient, work_id: str) -> dict[str, str]:
    snap = client.get(f"/api/work/{work_id}").json()["snapshot"]
    return {a["kind"]: a["artifact_id"] for a in snap["artifacts"]}


def test_artifacts_are_served_safely(wclient: TestClient, world: Any) -> None:
    client = wclient
    arts = _artifacts(client, world.artifacts)

    j = client.get(f"/artifacts/{arts['json']}/raw")
    assert j.status_code == 200
    assert j.headers["content-type"] == "application/json"
    assert j.headers["content-disposition"].startswith("inline")
    assert j.json()["verdict"] == "<b>reachable</b>"

    t = client.get(f"/artifacts/{arts['txt']}/raw?kind=txt")
    assert t.headers["content-type"] == "text/plain; charset=utf-8"
    assert t.headers["content-disposition"].startswith("inline")

    b = client.get(f"/artifacts/{arts['png']}/raw")
    assert b.headers["content-type"] == "application/octet-stream"
    assert b.headers["content-disposition"].startswith("attachment")
    assert b.content.startswith(b"\x89PNG")

    d = client.get(f"/artifacts/{arts['json']}/raw?download=1")
    assert d.headers["content-disposition"].startswith("attachment")

    for r in (j, t, b, d):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-security-policy"] == "default-src 'none'; sandbox"


def test_unknown_artifact_is_404_in_words(client: TestClient) -> None:
    r = client.get("/artifacts/" + "0" * 64 + "/raw")
    assert r.status_code == 404
    assert "Traceback" not in r.text


@pytest.mark.parametrize(
    "path", ["/", "/work", "/events", "/failed", "/api/counts", "/nope", "/fragments/overview"]
)
def test_security_headers_everywhere(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"


def test_pages_have_no_inline_script(wclient: TestClient, world: Any) -> None:
    arts = _artifacts(wclient, world.artifacts)
    pages = [
        "/",
        "/work",
        f"/work/{world.artifacts}",
        f"/work/{world.dead}",
        "/events",
        "/failed",
        f"/artifacts/{arts['json']}",
        f"/artifacts/{arts['md']}",
        "/fragments/overview",
        f"/fragments/timeline/{world.dead}",
    ]
    for path in pages:
        html = wclient.get(path).text
        scripts = re.findall(r"<script\b[^>]*>", html)
        expected = (
            [] if path.startswith("/fragments/") else ['<script src="/static/console.js" defer>']
        )
        assert scripts == expected, (path, scripts)
        assert not re.search(r"<[^>]+\son[a-z]+=", html), path
        assert not re.search(r"<[^>]+\sstyle=", html), path  # the CSP allows no inline style


def test_every_template_autoescapes() -> None:
    templates = make_templates()
    env = templates.env
    assert env.autoescape is True
    names = env.list_templates()
    assert "base.html" in names and len(names) >= 9
    for name in names:
        rendered = env.from_string("{{ x }}").render(x="<script>")
        assert rendered == "&lt;script&gt;"
        assert env.get_template(name) is not None


SCRIPT = "<script>alert('xss')</script>"


def test_script_in_payload_shows_as_text(wclient: TestClient, world: Any) -> None:
    html = wclient.get(f"/work/{world.script}").text
    assert SCRIPT not in html
    assert html.count("&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;") == 2  # key and value
    api = wclient.get(f"/api/work/{world.script}").json()
    assert api["item"]["payload"]["note"] == SCRIPT  # the API returns the data as it is


def test_script_in_artifacts_shows_as_text(wclient: TestClient, world: Any) -> None:
    arts = _artifacts(wclient, world.artifacts)
    html = wclient.get(f"/artifacts/{arts['txt']}").text
    assert "<script>alert('txt')" not in html
    assert "&lt;script&gt;alert(&#39;txt&#39;)&lt;/script&gt;" in html
    j = wclient.get(f"/artifacts/{arts['json']}").text
    assert "<b>reachable</b>" not in j and "&lt;b&gt;reachable&lt;/b&gt;" in j


@pytest.mark.parametrize("path", ["/boom", "/api/boom"])
def test_an_unexpected_error_is_a_500_in_words_with_the_headers(
    settings: RoostSettings, path: str
) -> None:
    app = create_app(settings, port=8766)

    async def boom(request: Any) -> Any:
        raise ZeroDivisionError("a bug")

    app.router.add_route(path, boom)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        r = c.get(path)
    assert r.status_code == 500
    assert "unexpected ZeroDivisionError" in r.text
    assert "Traceback" not in r.text and "a bug" not in r.text
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
