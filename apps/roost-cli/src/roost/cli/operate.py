"""Write verbs: enqueue, cancel, retry, replay."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from roost.cli import render
from roost.cli.context import (
    EXIT_BAD_INPUT,
    CliError,
    load_registry,
    open_backend,
    run,
    settings_of,
    warn,
)
from roost.runtime import (
    BadInput,
    ConflictError,
    NotFound,
    WorkState,
    WorkStatus,
    strictjson,
)
from roost.runtime.backends import WorkBackend
from roost.runtime.limits import (
    ATTEMPTS,
    BUDGET,
    DELAY,
    MAX_RUNTIME,
    MAX_STEPS,
    PRIORITY,
    STEP_TIMEOUT,
)

__all__ = [
    "cancel",
    "enqueue",
    "parse_delay",
    "parse_payload",
    "parse_runtime",
    "parse_step_timeout",
    "replay",
    "retry",
    "retry_dead",
    "wait_for",
]

WAIT_POLL = (0.05, 1.0)
"""``enqueue --wait`` polls the item's status from this often, backing off to this."""
RETRY_BATCH = 100
"""``retry --all-dead`` retries this many items at once."""


def parse_payload(text: str) -> dict[str, Any]:
    """Parse ``--payload``: a JSON object, ``@path`` (a file) or ``-``/``@-`` (stdin).

    The text must be strict JSON (RFC 8259: no NaN or Infinity) in UTF-8.

    Raises:
        CliError: unreadable, not UTF-8, not JSON, or not an object (exit 2).
    """
    source = "--payload"
    data: str | bytes = text
    if text in ("-", "@-"):
        data = sys.stdin.buffer.read()
        source = "--payload from stdin"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CliError(
                f"--payload: cannot read {path}: {exc.strerror}", EXIT_BAD_INPUT
            ) from None
        source = f"--payload {path}"
    try:
        value = strictjson.loads(data, where=source)
    except BadInput as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise CliError(f"{source} must be a JSON object, not a {kind}", EXIT_BAD_INPUT)
    return cast("dict[str, Any]", value)


def _seconds(text: str) -> float:
    """A duration flag's seconds (:func:`roost.runtime.settings.parse_duration`).

    Imported here: the settings module brings pydantic-settings, which ``--help`` does not
    need.
    """
    from roost.runtime.settings import parse_duration

    return parse_duration(text)


def parse_delay(flag: str, text: str | None) -> float:
    """Parse a delay flag (``90``, ``500ms``, ``5m``): 0 to 365 days.

    Raises:
        CliError: malformed or out of range (exit 2).
    """
    if text is None:
        return 0.0
    try:
        return DELAY.check(_seconds(text), flag)
    except ValueError as exc:
        message = str(exc)
        raise CliError(
            message if message.startswith(flag) else f"{flag}: {message}", EXIT_BAD_INPUT
        ) from None


def parse_step_timeout(text: str | None) -> float | None:
    """Parse ``--step-timeout`` (``30s``, ``5m``): 1 ms to 1 day, or None when absent.

    Raises:
        CliError: malformed or out of range (exit 2).
    """
    if text is None:
        return None
    try:
        return STEP_TIMEOUT.check(_seconds(text), "--step-timeout")
    except ValueError as exc:
        message = str(exc)
        if not message.startswith("--step-timeout"):
            message = f"--step-timeout: {message}"
        raise CliError(message, EXIT_BAD_INPUT) from None


def parse_runtime(flag: str, text: str | None) -> float | None:
    """Parse a runtime budget (``90m``, ``2h``): 1 s to 3650 days, or None when absent.

    Raises:
        CliError: malformed or out of range (exit 2).
    """
    if text is None:
        return None
    try:
        return MAX_RUNTIME.check(_seconds(text), flag)
    except ValueError as exc:
        message = str(exc)
        raise CliError(
            message if message.startswith(flag) else f"{flag}: {message}", EXIT_BAD_INPUT
        ) from None


def enqueue(
    ctx: typer.Context,
    engine: Annotated[str, typer.Option("--engine", help="The engine that runs the item.")],
    payload: Annotated[
        str,
        typer.Option(
            "--payload",
            metavar="JSON",
            help="A JSON object handed to the engine; @file.json reads a file, - reads stdin.",
        ),
    ] = "{}",
    resource: Annotated[
        list[str] | None,
        typer.Option(
            "--resource", help="A resource held exclusively during each step (repeatable)."
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="The same key always gives the same work id."),
    ] = None,
    delay: Annotated[
        str | None,
        typer.Option(
            "--delay",
            metavar="DURATION",
            help="Start after this long: seconds or 500ms, 30s, 5m... (at most 365d).",
        ),
    ] = None,
    priority: Annotated[
        int,
        typer.Option(
            "--priority",
            min=int(PRIORITY.low),
            max=int(PRIORITY.high),
            help="Above 0 goes to the front of the queue.",
        ),
    ] = 0,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            "--max-attempts",
            min=int(ATTEMPTS.low),
            max=int(ATTEMPTS.high),
            help="Attempts per step before the item is dead.",
        ),
    ] = None,
    step_timeout: Annotated[
        str | None,
        typer.Option(
            "--step-timeout",
            metavar="DURATION",
            help="Cancel a step that runs longer (its attempt fails with StepTimeout).",
        ),
    ] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(
            "--max-steps",
            min=int(MAX_STEPS.low),
            max=int(MAX_STEPS.high),
            help="Budget: pause as 'budget exceeded' after this many steps.",
        ),
    ] = None,
    max_runtime: Annotated[
        str | None,
        typer.Option(
            "--max-runtime",
            metavar="DURATION",
            help="Budget: pause as 'budget exceeded' this long after it was enqueued.",
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget",
            metavar="AMOUNT",
            min=BUDGET.low,
            max=BUDGET.high,
            help="Budget: pause once its steps charged this much (StepContext.charge).",
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Block until the item finishes; print its final status (JSON, as `roost "
            "status`) instead of the id; exit 1 if it failed, died or was cancelled.",
        ),
    ] = False,
    wait_timeout: Annotated[
        str | None,
        typer.Option(
            "--wait-timeout",
            metavar="DURATION",
            help="With --wait: give up after this long (exit 1; the item goes on).",
        ),
    ] = None,
) -> None:
    """Create a work item and print its work id (only the id, on stdout)."""
    settings = settings_of(ctx)

    async def main() -> None:
        body = parse_payload(payload)
        delay_seconds = parse_delay("--delay", delay)
        limit = parse_step_timeout(step_timeout)
        runtime = parse_runtime("--max-runtime", max_runtime)
        timeout = parse_delay("--wait-timeout", wait_timeout) if wait_timeout else None
        if timeout is not None and not wait:
            raise CliError("--wait-timeout needs --wait", EXIT_BAD_INPUT)
        registry = load_registry()
        registry.require(engine)  # unknown or broken: refused before touching Redis
        async with open_backend(settings, registry=registry, validate_engines=True) as backend:
            work_id = await backend.enqueue(
                engine,
                body,
                resources=resource or [],
                idempotency_key=idempotency_key,
                delay_seconds=delay_seconds,
                priority=priority,
                max_attempts=max_attempts,
                step_timeout=limit,
                max_steps=max_steps,
                max_runtime=runtime,
                budget=budget,
            )
            if not wait:
                typer.echo(work_id)
                return
            warn(f"enqueued {work_id}; waiting for it to finish (Ctrl-C stops waiting only)")
            try:
                async with asyncio.timeout(timeout):
                    status = await wait_for(backend, work_id)
            except TimeoutError:
                status = await backend.status(work_id)
        render.echo_json(status)
        state = status.meta.state
        if not state.is_terminal:
            raise CliError(f"work {work_id} is still {state} after {wait_timeout}; it goes on")
        if state != WorkState.DONE:
            err = status.meta.last_error
            cause = f": {err.type}: {render.compact(err.message, 200)}" if err else ""
            raise CliError(f"work {work_id} ended {state}{cause}")

    run(main)


async def wait_for(backend: WorkBackend, work_id: str) -> WorkStatus:
    """Poll the item until it is finished; return its final status."""
    pause = WAIT_POLL[0]
    while True:
        status = await backend.status(work_id)
        if status.meta.state.is_terminal:
            return status
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, WAIT_POLL[1])


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the item's meta as JSON.")]


def cancel(
    ctx: typer.Context,
    work_id: Annotated[str, typer.Argument(help="The work item to cancel.")],
    as_json: JsonFlag = False,
) -> None:
    """Cancel an unfinished item; a running step is told to stop and its commit refused."""
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_backend(settings) as backend:
            meta = await backend.cancel(work_id)
        if as_json:
            render.echo_json(meta)
        else:
            typer.echo(f"{meta.work_id}: {meta.state} (step {meta.step or '-'}, v{meta.version})")

    run(main)


def retry(
    ctx: typer.Context,
    work_id: Annotated[
        str | None,
        typer.Argument(metavar="[WORK_ID]", help="A failed or dead work item."),
    ] = None,
    all_dead: Annotated[
        bool, typer.Option("--all-dead", help="Retry every dead item (of --engine, if given).")
    ] = False,
    engine: Annotated[
        str | None,
        typer.Option("--engine", metavar="ENGINE", help="With --all-dead: only this engine's."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Queue a failed or dead item again, with fresh attempts, from its latest snapshot.

    With --all-dead, every dead letter (or those of --engine) is retried; the command says
    how many were, and how many were skipped because they were no longer dead.
    """
    settings = settings_of(ctx)

    async def main() -> None:
        if all_dead == (work_id is not None):
            raise CliError("give a WORK_ID or --all-dead (not both)", EXIT_BAD_INPUT)
        if engine is not None and not all_dead:
            raise CliError("--engine goes with --all-dead", EXIT_BAD_INPUT)
        async with open_backend(settings) as backend:
            if work_id is not None:
                meta = await backend.retry(work_id)
                if as_json:
                    render.echo_json(meta)
                else:
                    step = meta.step or "-"
                    typer.echo(f"{meta.work_id}: {meta.state} (from v{meta.version}, step {step})")
                return
            retried, skipped = await retry_dead(backend, engine)
        if as_json:
            render.echo_json({"retried": retried, "skipped": skipped})
            return
        whose = f" of engine {engine}" if engine else ""
        note = f" ({len(skipped)} skipped: no longer dead)" if skipped else ""
        typer.echo(f"retried {len(retried)} dead items{whose}{note}")

    run(main)


async def retry_dead(backend: WorkBackend, engine: str | None) -> tuple[list[str], list[str]]:
    """Retry every dead item (of ``engine``); return the ids retried and those skipped.

    The dead letters are listed first, page by page, then retried (in batches of
    :data:`RETRY_BATCH`), so retrying does not move the pages being read. An item that is
    no longer dead when its turn comes (retried or removed meanwhile) is skipped.
    """
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = await backend.list_work(
            state=WorkState.DEAD, engine=engine, limit=1000, cursor=cursor
        )
        ids += [m.work_id for m in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    retried: list[str] = []
    skipped: list[str] = []
    for start in range(0, len(ids), RETRY_BATCH):
        chunk = ids[start : start + RETRY_BATCH]
        results = await asyncio.gather(*(backend.retry(i) for i in chunk), return_exceptions=True)
        for wid, result in zip(chunk, results, strict=True):
            if isinstance(result, ConflictError | NotFound):
                skipped.append(wid)
            elif isinstance(result, BaseException):
                raise result
            else:
                retried.append(wid)
    return retried, skipped


def replay(
    ctx: typer.Context,
    work_id: Annotated[str, typer.Argument(help="A finished item (any item with --as-new).")],
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            min=0,
            help="Snapshot version to start from: 0 = from scratch; default the latest.",
        ),
    ] = None,
    as_new: Annotated[
        bool, typer.Option("--as-new", help="Run a copy as a new item; the original stays.")
    ] = False,
) -> None:
    """Run an item again from a snapshot; print the id of the item that runs."""
    settings = settings_of(ctx)

    async def main() -> None:
        async with open_backend(settings) as backend:
            new_id = await backend.replay(work_id, version=version, as_new=as_new)
        typer.echo(new_id)

    run(main)
