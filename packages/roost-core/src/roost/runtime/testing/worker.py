"""A worker process running the conformance suite's engines.

::

    python -m roost.runtime.testing.worker --store my_backend:MyStore \
        --engines conformance,conformance-other --concurrency 4 --label w0

``--store`` names a zero-argument callable (``module:attribute``, or
``/path/file.py:attribute``) that returns the backend's operator API, configured from the
environment (``ROOST_*`` variables) as ``roost worker`` would be. It must be an async context
manager with ``run_worker(engines, *, concurrency)``. The engines are
:class:`~roost.runtime.testing.chain_engine.ChainEngine` objects labelled ``--label``.

The process prints ``ready`` on stdout once the store is open and ``run_worker`` has begun
(so the worker's own signal handlers are in place), and runs until the worker stops
(SIGTERM/SIGINT, handled by ``run_worker``).

With ``--warm`` (and only ``--store``), the process imports the store's module, then reads its
orders as one JSON line on stdin: ``{"env": {...}, "log": path, "engines": [...],
"concurrency": n, "label": "w0"}``; it takes ``env`` as its whole environment and writes its
stderr to ``log``. :class:`~roost.runtime.testing.processes.WorkerPool` keeps such processes
ready, so that starting a worker does not wait for Python's imports.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, cast

from roost.runtime.engine import Engine
from roost.runtime.errors import BadInput
from roost.runtime.testing.chain_engine import CHAIN, build_engines

__all__ = ["READY", "WorkerHost", "load_callable", "main"]

READY = "ready"
"""What the process prints on stdout once its worker runs."""


class WorkerHost(Protocol):
    """What ``--store`` must return: an async context manager that can run a worker."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> object: ...

    async def run_worker(self, engines: Sequence[Engine], *, concurrency: int) -> None:
        """Run a worker until it is stopped."""
        ...


def load_callable(spec: str) -> Callable[[], Any]:
    """Load ``module:attribute`` or ``/path/to/file.py:attribute``.

    Raises:
        BadInput: the spec is malformed or names nothing callable.
    """
    target, sep, attribute = spec.rpartition(":")
    if not sep or not target or not attribute:
        raise BadInput(f"--store must be module:attribute, not {spec!r}")
    if target.endswith(".py"):
        path = Path(target)
        loader = importlib.util.spec_from_file_location(path.stem, path)
        if loader is None or loader.loader is None:
            raise BadInput(f"cannot load {target}")
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    found = getattr(module, attribute, None)
    if not callable(found):
        raise BadInput(f"{spec} is not callable")
    return cast("Callable[[], Any]", found)


async def _serve(store: WorkerHost, engines: Sequence[Engine], concurrency: int) -> None:
    async with store:
        worker = asyncio.create_task(store.run_worker(engines, concurrency=concurrency))
        await asyncio.sleep(0)  # the worker starts and installs its signal handlers
        if not worker.done():
            print(READY, flush=True)
        await worker


def _take_orders(args: argparse.Namespace) -> None:
    """Wait for the orders of a ``--warm`` process (see the module docstring)."""
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)  # the pool closed without using this process
    orders: dict[str, Any] = json.loads(line)
    os.environ.clear()
    os.environ.update(orders["env"])
    fd = os.open(orders["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    args.engines = ",".join(orders["engines"])
    args.concurrency = int(orders["concurrency"])
    args.label = str(orders["label"])


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line (see the module docstring) and run the worker."""
    parser = argparse.ArgumentParser(prog="python -m roost.runtime.testing.worker")
    parser.add_argument("--store", required=True, help="module:attribute of the store factory")
    parser.add_argument("--engines", default=CHAIN, help="comma-separated engine ids")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--label", default="", help="the worker's name in the journal")
    parser.add_argument("--warm", action="store_true", help="read the orders from stdin")
    args = parser.parse_args(argv)
    try:
        factory = load_callable(args.store)
        if args.warm:
            _take_orders(args)
        engines = build_engines(args.engines.split(","), label=args.label)
    except BadInput as exc:
        parser.exit(2, f"worker: {exc}\n")
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    asyncio.run(_serve(cast("WorkerHost", factory()), engines, args.concurrency))


if __name__ == "__main__":
    main()
