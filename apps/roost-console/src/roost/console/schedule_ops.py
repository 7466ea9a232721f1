"""What the Schedules page reads and changes: the swarm's schedule store, behind one gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.redis.schedule_data import check_schedule_name
from roost.runtime.errors import NotFound

if TYPE_CHECKING:
    from roost.redis import RedisSwarm
    from roost.redis.schedules import Schedule

__all__ = ["act", "get", "list_all"]


async def list_all(swarm: RedisSwarm) -> list[Schedule]:
    """Every schedule of the namespace, with its last item's state."""
    return await swarm.schedules.list()


async def get(swarm: RedisSwarm, name: str) -> Schedule:
    """One schedule.

    Raises:
        BadInput: a malformed name.
        NotFound: no such schedule.
    """
    return await swarm.schedules.get(check_schedule_name(name))


async def act(swarm: RedisSwarm, action: str, name: str) -> None:
    """Pause, resume or run a schedule now.

    Raises:
        NotFound: an unknown action or schedule.
    """
    if action == "pause":
        await swarm.schedules.pause(name)
    elif action == "resume":
        await swarm.schedules.resume(name)
    elif action == "run-now":
        await swarm.schedules.run_now(name)
    else:
        raise NotFound(f"unknown action {action!r} (pause, resume or run-now)")
