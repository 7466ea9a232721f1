"""What the Schedules page reads and changes: the backend's schedule store, behind one gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.redis.plugin import swarm_of
from roost.redis.schedule_data import check_schedule_name
from roost.runtime.errors import NotFound

if TYPE_CHECKING:
    from roost.redis.schedules import Schedule
    from roost.runtime.backends import WorkBackend

__all__ = ["act", "get", "list_all"]


async def list_all(backend: WorkBackend) -> list[Schedule]:
    """Every schedule of the namespace, with its last item's state."""
    return await swarm_of(backend).schedules.list()


async def get(backend: WorkBackend, name: str) -> Schedule:
    """One schedule.

    Raises:
        BadInput: a malformed name.
        NotFound: no such schedule.
    """
    return await swarm_of(backend).schedules.get(check_schedule_name(name))


async def act(backend: WorkBackend, action: str, name: str) -> None:
    """Pause, resume or run a schedule now.

    Raises:
        NotFound: an unknown action or schedule.
    """
    if action == "pause":
        await swarm_of(backend).schedules.pause(name)
    elif action == "resume":
        await swarm_of(backend).schedules.resume(name)
    elif action == "run-now":
        await swarm_of(backend).schedules.run_now(name)
    else:
        raise NotFound(f"unknown action {action!r} (pause, resume or run-now)")
