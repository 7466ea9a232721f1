"""Run an engine in memory, without a backend: for engine authors' unit tests.

:class:`EngineRunner` drives ``init_snapshot`` and then ``step`` until a snapshot says
``is_finished``, the way a Roost worker does: each call runs inside a step context
(:func:`roost.runtime.step_context`) with the work id, version, attempt, an artifact store
and a workspace directory; every result is checked by :mod:`roost.runtime.contract` and
numbered by the runtime (version 1, 2, ...); every step gets a fresh copy of the committed
snapshot parsed from JSON. Delays (``next_step_delay_seconds``) are recorded, not slept.
Exceptions raised by the engine propagate unchanged (there are no automatic retries; use
:meth:`EngineRunner.step` to run the same step twice).

Example::

    from my_package.engine import build_engine
    from roost.runtime.testing import EngineRunner


    async def test_my_engine_finishes():
        async with EngineRunner(build_engine()) as runner:
            result = await runner.run({"task": "ship it"})
        assert result.final.is_finished
        assert [s.step for s in result.snapshots] == ["start", "done"]


    async def test_step_is_retry_safe():
        async with EngineRunner(build_engine()) as runner:
            item = runner.work_item({"task": "ship it"})
            first = await runner.init(item)
            once = await runner.step(first, item)
            again = await runner.step(first, item, attempt=2)
        assert once == again

This is a test aid, not a runtime: Roost's own runtime tests use a real backend.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from roost.runtime.artifacts import FileArtifactStore
from roost.runtime.context import StepContext, use_step_context
from roost.runtime.contract import accept_init, accept_step, fresh_copy
from roost.runtime.errors import BadInput, RoostError
from roost.runtime.models import WorkItem
from roost.runtime.plugins import check_engine

if TYPE_CHECKING:
    from roost.runtime.engine import Engine
    from roost.runtime.models import Artifact, Snapshot
    from roost.runtime.stores import ArtifactStore

__all__ = ["EngineRunner", "ProgressReport", "RunResult", "StepLimitExceeded"]


def _fresh_item(item: WorkItem) -> WorkItem:
    """A copy of ``item`` parsed from its JSON form, as a worker loads it."""
    return WorkItem.model_validate_json(item.model_dump_json())


class StepLimitExceeded(RoostError):
    """The engine did not finish within ``max_steps`` steps.

    Attributes:
        result: what the run produced until it stopped (its snapshots, delays, progress).
    """

    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class ProgressReport:
    """One call of ``step_context().progress(...)`` made by the engine.

    Attributes:
        work_id: the item the step ran for.
        version: the snapshot version the call started from (0 for ``init_snapshot``).
        attempt: the attempt number the runner passed.
        fraction: the reported fraction, if any.
        message: the reported message, if any.
        data: the reported extras.
    """

    work_id: str
    version: int
    attempt: int
    fraction: float | None
    message: str | None
    data: dict[str, Any]


@dataclass
class RunResult:
    """What :meth:`EngineRunner.run` saw.

    Attributes:
        item: the work item that ran.
        snapshots: every accepted snapshot, ``snapshots[0]`` being version 1.
        delays: the ``next_step_delay_seconds`` of each snapshot that was followed by a step
            (in order; the runner did not sleep them).
        progress: the progress reports of this run.
        store: the artifact store the engine wrote to.
    """

    item: WorkItem
    snapshots: list[Snapshot]
    delays: list[float] = field(default_factory=list[float])
    progress: list[ProgressReport] = field(default_factory=list[ProgressReport])
    store: ArtifactStore | None = None

    @property
    def final(self) -> Snapshot:
        """The last accepted snapshot."""
        return self.snapshots[-1]

    @property
    def steps(self) -> int:
        """How many times ``step`` ran (``init_snapshot`` not counted)."""
        return len(self.snapshots) - 1

    @property
    def total_delay(self) -> float:
        """The sum of :attr:`delays`: how long a real worker would have waited."""
        return sum(self.delays)

    @property
    def artifacts(self) -> list[Artifact]:
        """The artifacts listed by the final snapshot."""
        return list(self.final.artifacts)

    def version(self, version: int) -> Snapshot:
        """Return the snapshot with that version (1 is what ``init_snapshot`` returned).

        Raises:
            KeyError: no such version in this run.
        """
        if not 1 <= version <= len(self.snapshots):
            raise KeyError(f"no snapshot version {version} (have 1-{len(self.snapshots)})")
        return self.snapshots[version - 1]

    async def read_artifact(self, artifact: Artifact) -> bytes:
        """Return the content of one of the run's artifacts."""
        if self.store is None:
            raise RoostError("this result has no artifact store")
        return await self.store.read(artifact.artifact_id, artifact.kind)


class EngineRunner:
    """Drives one engine in memory, the way a Roost worker would.

    Args:
        engine: the engine under test (checked like ``Registry.build_engine`` checks it).
        artifacts: the artifact store steps write to; default: a
            :class:`~roost.runtime.artifacts.FileArtifactStore` in a temporary directory.
        workspace_root: parent of per-item workspace directories; default: a temporary
            directory.
        worker_id: the worker id steps see in their context.

    The temporary directory is removed by :meth:`close` (or leaving ``async with``/``with``),
    at the latest when the runner is garbage collected.

    Raises:
        EngineContractError: ``engine`` lacks ``engine_id``, ``init_snapshot`` or an async
            ``step``.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        artifacts: ArtifactStore | None = None,
        workspace_root: str | Path | None = None,
        worker_id: str = "roost-harness",
    ) -> None:
        check_engine(engine, str(getattr(engine, "engine_id", type(engine).__name__)))
        self.engine: Engine = engine
        self.worker_id = worker_id
        self.progress: list[ProgressReport] = []
        """Every progress report of every call, in order."""
        self._tmp: Path | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        if artifacts is None or workspace_root is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="roost-harness-"))
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._tmp, True)
        self.artifacts: ArtifactStore = (
            artifacts if artifacts is not None else FileArtifactStore(self._tmpdir("artifacts"))
        )
        self.workspace_root: Path = (
            Path(workspace_root) if workspace_root is not None else self._tmpdir("workspaces")
        )

    def _tmpdir(self, name: str) -> Path:
        assert self._tmp is not None
        return self._tmp / name

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Remove the temporary directory (if the runner made one)."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- one call at a time ---------------------------------------------------------------

    def work_item(self, item_or_payload: WorkItem | Mapping[str, Any] | None = None) -> WorkItem:
        """Return ``item_or_payload`` as a work item for this engine.

        A mapping (or ``None``) becomes the payload of a new item whose ``engine`` is the
        engine's ``engine_id``; a :class:`WorkItem` is returned unchanged.
        """
        if isinstance(item_or_payload, WorkItem):
            return item_or_payload
        payload = dict(item_or_payload or {})
        return WorkItem(engine=self.engine.engine_id, payload=payload)

    def _context(self, work_id: str, version: int, attempt: int, cancelled: bool) -> StepContext:
        reports = self.progress

        async def report(fraction: float | None, message: str | None, data: dict[str, Any]) -> None:
            try:
                json.dumps(data, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise BadInput(f"progress data must be JSON-serializable: {exc}") from None
            reports.append(ProgressReport(work_id, version, attempt, fraction, message, dict(data)))

        ctx = StepContext(
            work_id=work_id,
            version=version,
            attempt=attempt,
            worker_id=self.worker_id,
            artifacts=self.artifacts,
            workspace_root=self.workspace_root,
            report=report,
        )
        if cancelled:
            ctx.cancel_event.set()
        return ctx

    async def init(self, item: WorkItem, *, attempt: int = 1) -> Snapshot:
        """Run ``init_snapshot(item)`` in a step context and return the accepted version 1.

        Raises:
            EngineContractError: the engine returned something the contract does not allow.
        """
        ctx = self._context(item.work_id, 0, attempt, cancelled=False)
        with use_step_context(ctx):
            result = await self.engine.init_snapshot(_fresh_item(item))
        return accept_init(result, item)

    async def step(
        self, snapshot: Snapshot, item: WorkItem, *, attempt: int = 1, cancelled: bool = False
    ) -> Snapshot:
        """Run one ``step`` from ``snapshot`` and return the accepted next version.

        ``snapshot`` itself is never handed to the engine: the step gets a fresh copy parsed
        from its JSON form, as in the real runtime, so the same snapshot can be stepped again
        to check the step is retry-safe.

        Args:
            snapshot: the committed snapshot to start from.
            item: the work item.
            attempt: the attempt number the step sees in its context.
            cancelled: start the step with ``step_context().cancelled`` already true.

        Raises:
            EngineContractError: the engine returned something the contract does not allow.
        """
        ctx = self._context(item.work_id, snapshot.version, attempt, cancelled)
        with use_step_context(ctx):
            result = await self.engine.step(fresh_copy(snapshot), _fresh_item(item))
        return accept_step(result, snapshot, item)

    # -- a whole run ----------------------------------------------------------------------

    async def run(
        self, item_or_payload: WorkItem | Mapping[str, Any] | None = None, *, max_steps: int = 1000
    ) -> RunResult:
        """Run ``init_snapshot`` then ``step`` until the snapshot ``is_finished``.

        Args:
            item_or_payload: a work item, or the payload of a new one (see :meth:`work_item`).
            max_steps: how many ``step`` calls are allowed before giving up.

        Returns:
            Every snapshot version, the delays asked for, the progress reports and the store.

        Raises:
            StepLimitExceeded: the engine did not finish within ``max_steps`` steps.
            EngineContractError: the engine returned something the contract does not allow.
        """
        if max_steps < 0:
            raise BadInput("max_steps must be 0 or more")
        item = self.work_item(item_or_payload)
        first_report = len(self.progress)
        snapshot = await self.init(item)
        result = RunResult(item=item, snapshots=[snapshot], store=self.artifacts)
        while not snapshot.is_finished:
            if result.steps >= max_steps:
                result.progress = self.progress[first_report:]
                raise StepLimitExceeded(
                    f"engine {item.engine!r} did not finish work item {item.work_id} within "
                    f"max_steps={max_steps} steps (last: version {snapshot.version}, "
                    f"step {snapshot.step!r})",
                    result,
                )
            result.delays.append(snapshot.next_step_delay_seconds)
            snapshot = await self.step(snapshot, item)
            result.snapshots.append(snapshot)
        result.progress = self.progress[first_report:]
        return result
