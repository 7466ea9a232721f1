"""Bad input: one line on stderr naming the problem, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from cli_support import Cli


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


ENQUEUE = ("enqueue", "--engine", "watchlist")

CASES: list[tuple[tuple[str, ...], dict[str, str], str]] = [
    ((*ENQUEUE, "--payload", "{not json"), {}, "--payload is not JSON"),
    ((*ENQUEUE, "--payload", "[1, 2]"), {}, "--payload must be a JSON object, not a list"),
    ((*ENQUEUE, "--payload", '"text"'), {}, "must be a JSON object, not a str"),
    ((*ENQUEUE, "--payload", "@/nonexistent/payload.json"), {}, "cannot read"),
    (("enqueue", "--engine", "nope"), {}, "unknown engine 'nope' (installed: "),
    ((*ENQUEUE, "--resource", "bad resource"), {}, "invalid resource 'bad resource'"),
    ((*ENQUEUE, "--resource", "a", "--resource", "a"), {}, "duplicate resources"),
    ((*ENQUEUE, "--delay", "soon"), {}, "--delay: not a duration"),
    ((*ENQUEUE, "--delay", "1e300"), {}, "--delay must be between 0 and 365d, not 1e+300 seconds"),
    ((*ENQUEUE, "--delay", "366d"), {}, "--delay must be between 0 and 365d"),
    ((*ENQUEUE, "--payload", '{"x": NaN}'), {}, "--payload: NaN is not JSON (RFC 8259"),
    ((*ENQUEUE, "--payload", '{"x": -Infinity}'), {}, "--payload: -Infinity is not JSON"),
    ((*ENQUEUE, "--payload", '{"x": 1e400}'), {}, "the number 1e400 is too large"),
    ((*ENQUEUE, "--payload", '{"x": "\\ud800"}'), {}, "--payload: x holds a lone surrogate"),
    ((*ENQUEUE, "--payload", "[" * 100_000), {}, "--payload is nested too deeply"),
    (
        (*ENQUEUE, "--payload", '{"url": "http://127.0.0.1:1/"}'),
        {"ROOST_EVENTS_MAXLEN": str(10**19)},
        "ROOST_EVENTS_MAXLEN: must be between 1 and 1,000,000,000",
    ),
    ((*ENQUEUE, "--idempotency-key", "x" * 300), {}, "idempotency_key"),
    (("status", "0123456789abcdef0123456789abcdef"), {}, "unknown work id"),
    (("status", "not a work id"), {}, "invalid work id"),
    (("events", "0123456789abcdef0123456789abcdef"), {}, "unknown work id"),
    (("cancel", "0123456789abcdef0123456789abcdef"), {}, "unknown work id"),
    (("retry", "0123456789abcdef0123456789abcdef"), {}, "unknown work id"),
    (("replay", "0123456789abcdef0123456789abcdef"), {}, "unknown work id"),
    (("workspace-path", "0123456789abcdef0123456789abcdef"), {}, "unknown work id"),
    (("list", "--cursor", "nonsense"), {}, "invalid cursor"),
    (("artifact-show", "abc"), {}, "invalid artifact id"),
    (("artifact-show", "a" * 64, "--ext", "json"), {}, "not found"),
    (("list",), {"ROOST_LEASE_TTL": "-1"}, "ROOST_LEASE_TTL"),
    (("list",), {"ROOST_NAMESPACE": "has space"}, "ROOST_NAMESPACE"),
    (("list",), {"ROOST_REDIS_URL": "redis://127.0.0.1:notaport/0"}, "ROOST_REDIS_URL"),
    (("list",), {"ROOST_REDIS_URL": "http://127.0.0.1/"}, "ROOST_REDIS_URL"),
    (("--redis-url", "ftp://x", "list"), {}, "--redis-url"),
    (("--namespace", "a b", "list"), {}, "--namespace"),
    (("--partitions", "3", "list"), {}, "--partitions: must be a power of two from 1 to 1024"),
    (("worker",), {"ROOST_PARTITIONS": "12"}, "ROOST_PARTITIONS: must be a power of two"),
    (("worker", "--worker-id", "bad id"), {}, "--worker-id: 'bad id' must be 1-128 characters"),
    (("worker",), {"ROOST_WORKER_ID": "{tag}"}, "ROOST_WORKER_ID: '{tag}' must be"),
    (("worker",), {"ROOST_HEARTBEAT_TIMEOUT": "0.1"}, "ROOST_HEARTBEAT_TIMEOUT: must be"),
]


@pytest.mark.parametrize(
    ("args", "env", "message"), CASES, ids=[" ".join(c[0])[:60] for c in CASES]
)
def test_bad_input_exits_2_with_one_line(
    cli: Cli, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    before = cli.counts()
    result = cli(*args, env=env)
    assert result.code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert result.stdout == ""
    assert cli.counts() == before


def test_unreachable_redis_url_exits_2(cli: Cli) -> None:
    url = refused_url()
    for args in (("list",), (*ENQUEUE, "--payload", '{"url": "http://x"}'), ("status", "abc")):
        result = cli(*args, env={"ROOST_REDIS_URL": url})
        assert result.code == 2
        assert result.stderr.splitlines() == [result.stderr.strip()]
        assert f"cannot reach Redis at {url}" in result.stderr
    assert sum(cli.counts().values()) == 0


def test_asking_for_another_number_of_partitions_exits_2(cli: Cli) -> None:
    payload = ("--payload", '{"url": "http://127.0.0.1:1/"}', "--delay", "1h")
    first = cli("--partitions", "4", *ENQUEUE, *payload)
    assert first.code == 0, first.stderr
    before = cli.counts()
    ns = cli.env["ROOST_NAMESPACE"]
    for args in (("--partitions", "1", "list"), ("--partitions", "8", *ENQUEUE, *payload)):
        result = cli.proc(*args)
        assert result.code == 2, result
        assert result.stderr.splitlines() == [
            f"error: ROOST_PARTITIONS: namespace {ns!r} has 4 partitions, not "
            f"{args[1]} (fixed when it was created)"
        ]
    assert cli("list").code == 0  # not asking: the namespace's own number
    assert cli.counts() == before


def test_as_a_real_process_no_traceback(cli: Cli) -> None:
    before = cli.counts()
    for args, env in (
        ((*ENQUEUE, "--payload", "[1]"), {}),
        (("enqueue", "--engine", "nope"), {}),
        (("status", "0123456789abcdef0123456789abcdef"), {}),
        (("list",), {"ROOST_LEASE_TTL": "-1"}),
        (("list",), {"ROOST_REDIS_URL": refused_url()}),
    ):
        result = cli.proc(*args, env=env)
        assert result.code == 2, result
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("error: ")
    assert cli.counts() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("enqueue",), "Missing option '--engine'"),
        (("enqueue", "--engine", "watchlist", "--bogus"), "No such option: --bogus"),
        (("list", "--state", "sleeping"), "Invalid value for '--state'"),
        (("list", "--limit", "0"), "Invalid value for '--limit'"),
        (("worker", "--concurrency", "0"), "Invalid value for '--concurrency'"),
        (("worker", "--concurrency", "10001"), "less than or equal to 10000"),
        ((*ENQUEUE, "--priority", "10000000"), "Invalid value for '--priority'"),
        ((*ENQUEUE, "--max-attempts", "1001"), "Invalid value for '--max-attempts'"),
        (("status",), "Missing argument 'WORK_ID'"),
        (("server", "restart"), "No such command 'restart'"),
        (("no-such-command",), "No such command 'no-such-command'"),
        (("retry",), "give a WORK_ID or --all-dead"),
        (("retry", "abc", "--all-dead"), "give a WORK_ID or --all-dead"),
        (("retry", "abc", "--engine", "x"), "--engine goes with --all-dead"),
        ((*ENQUEUE, "--wait-timeout", "5s"), "--wait-timeout needs --wait"),
        (("events", "--type", "commited"), "--type: unknown event type 'commited'"),
    ],
)
def test_usage_errors_are_one_error_line_and_exit_2(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    before = cli.counts()
    result = cli(*args)
    assert result.code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()  # one line: no usage block, no box
    assert line.startswith("error: ") and message in line, line
    assert "╭" not in result.stderr and "Traceback" not in result.stderr
    assert cli.counts() == before


def test_runtime_conflicts_exit_1(cli: Cli) -> None:
    work_id = cli(
        *ENQUEUE, "--payload", '{"url": "http://127.0.0.1:1/"}', "--delay", "60"
    ).stdout.strip()
    assert cli("cancel", work_id).code == 0
    again = cli("cancel", work_id)
    assert again.code == 1
    assert again.stderr.strip() == f"error: work {work_id} is already cancelled; nothing to cancel"
    retry = cli("retry", work_id)
    assert retry.code == 1 and "only failed or dead work can be retried" in retry.stderr


def test_a_payload_file_that_is_not_utf8_exits_2(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "payload.json"
    path.write_bytes('{"claim": "caf\u00e9"}'.encode("latin-1"))
    result = cli(*ENQUEUE, "--payload", f"@{path}")
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"error: --payload {path} is not UTF-8 text: invalid continuation byte at byte 14"
    ]
    assert sum(cli.counts().values()) == 0


@pytest.mark.parametrize("flag", ["-", "@-"])
def test_payload_from_stdin(cli: Cli, flag: str) -> None:
    body = '{"url": "http://127.0.0.1:1/", "checks_required": 2}'
    result = cli(*ENQUEUE, "--payload", flag, "--delay", "1h", input=body)
    assert result.code == 0, result.stderr
    work_id = result.stdout.strip()
    assert cli.status(work_id).item.payload == json.loads(body)  # type: ignore[union-attr]
    bad = cli(*ENQUEUE, "--payload", flag, input='{"x": NaN}')
    assert bad.code == 2
    assert (
        bad.stderr.strip()
        == "error: --payload from stdin: NaN is not JSON (RFC 8259 has no NaN or Infinity)"
    )
