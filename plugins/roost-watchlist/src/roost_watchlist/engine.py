"""The watchlist engine: one HTTP check per step, then a JSON evidence report.

Snapshot data while it runs::

    {"url", "claim", "checks_required", "delay_seconds", "timeout_seconds",
     "observations": [...], "checks_completed": n, "verdict": None}

Each step derives its result from the snapshot it is given (it appends one observation to a
copy), so running a step twice from the same snapshot, as Roost may after a crash, never
records an observation twice. The last step also writes the report artifact and sets
``verdict``: ``reachable`` (every check succeeded), ``unreachable`` (none did) or ``flaky``.
"""

from __future__ import annotations

from typing import Any

from roost.runtime import Snapshot, WorkItem, step_context
from roost_watchlist.config import WatchConfig
from roost_watchlist.fetch import observe

__all__ = ["WatchlistEngine", "build_engine", "verdict_of"]


def verdict_of(observations: list[dict[str, Any]]) -> str:
    """``reachable`` if every observation is ok, ``unreachable`` if none is, else ``flaky``."""
    ok = sum(1 for obs in observations if obs.get("ok"))
    if observations and ok == len(observations):
        return "reachable"
    if ok == 0:
        return "unreachable"
    return "flaky"


def build_report(
    config: WatchConfig, observations: list[dict[str, Any]], work_id: str
) -> dict[str, Any]:
    """The evidence report: the claim, the verdict and every observation behind it."""
    ok = sum(1 for obs in observations if obs.get("ok"))
    return {
        "claim": config.claim,
        "url": config.url,
        "verdict": verdict_of(observations),
        "checks_completed": len(observations),
        "checks": {
            "required": config.checks_required,
            "completed": len(observations),
            "ok": ok,
            "failed": len(observations) - ok,
            "delay_seconds": config.delay_seconds,
        },
        "first_check_at": observations[0]["time"] if observations else None,
        "last_check_at": observations[-1]["time"] if observations else None,
        "observations": observations,
        "work_id": work_id,
    }


class WatchlistEngine:
    """Checks that a URL answers, ``checks_required`` times, ``delay_seconds`` apart.

    Args:
        timeout: default timeout (seconds) of one fetch; a payload's ``timeout_seconds``
            wins.
    """

    engine_id = "watchlist"

    def __init__(self, *, timeout: float = 10.0) -> None:
        self.timeout = timeout

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        """Validate the payload and return a snapshot with no observations yet.

        Raises:
            PermanentError: the payload is not a valid watchlist payload (the message says
                why); the item fails at once instead of being retried.
        """
        config = WatchConfig.from_payload(item.payload, timeout=self.timeout)
        return Snapshot(
            work_id=item.work_id,
            engine=self.engine_id,
            step="check-1",
            data={
                **config.to_data(),
                "observations": [],
                "checks_completed": 0,
                "verdict": None,
            },
        )

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        """Make one check; after the last one, write the evidence report."""
        data = dict(snapshot.data)
        config = WatchConfig.from_payload(
            {k: data[k] for k in ("url", "claim", "checks_required", "delay_seconds")}
            | {"timeout_seconds": data.get("timeout_seconds", self.timeout)}
        )
        observations: list[dict[str, Any]] = list(data.get("observations") or [])
        ctx = step_context()
        observations.append(
            await observe(
                config.url,
                timeout_seconds=config.timeout_seconds,
                check=len(observations) + 1,
                worker=ctx.worker_id,
            )
        )
        done = len(observations)
        data["observations"] = observations
        data["checks_completed"] = done
        new = snapshot.model_copy(update={"data": data})
        if done < config.checks_required:
            new.step = f"check-{done + 1}"
            new.next_step_delay_seconds = config.delay_seconds
            return new
        report = build_report(config, observations, item.work_id)
        artifact = await ctx.put_artifact(
            report,
            kind="json",
            metadata={"verdict": report["verdict"], "checks_completed": done},
        )
        data["verdict"] = report["verdict"]
        new.step = "done"
        new.is_finished = True
        new.next_step_delay_seconds = 0.0
        new.artifacts = [*snapshot.artifacts, artifact]
        return new


def build_engine(**kwargs: Any) -> WatchlistEngine:
    """Build the engine (``timeout=`` sets the default fetch timeout)."""
    return WatchlistEngine(**kwargs)
