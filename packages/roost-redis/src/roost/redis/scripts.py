"""Loads the Lua scripts once and calls them with the namespace block of KEYS and ARGV."""

from __future__ import annotations

import logging
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

    from roost.redis.aio import AsyncRedis

__all__ = ["SCRIPT_NAMES", "Scripts"]

log = logging.getLogger("roost.redis")

WAITAOF_TIMEOUT_MS = 5000
LOAD_TRIES = 3
"""How many times a call loads its script again when the server keeps answering NOSCRIPT."""

SCRIPT_NAMES = (
    "dequeue",
    "undeliver",
    "enqueue",
    "acquire",
    "renew",
    "commit",
    "fail",
    "release",
    "progress",
    "promote",
    "recover",
    "reclaim",
    "migrate",
    "purge",
    "cancel",
    "retry",
    "replay",
    "signal",
    "pause",
    "resume",
    "budget",
)


def _source(name: str) -> str:
    lua = files("roost.redis").joinpath("lua")
    return lua.joinpath("_prelude.lua").read_text() + "\n" + lua.joinpath(f"{name}.lua").read_text()


class Scripts:
    """The registered scripts of one client.

    Scripts run by EVALSHA; a script the server does not have (``NOSCRIPT``: after a restart,
    a failover or ``SCRIPT FLUSH``) is loaded again and the call repeated at once, so callers
    do not see that error unless the cache keeps being flushed under them.
    """

    def __init__(self, client: AsyncRedis) -> None:
        self._client = client
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(_source(name)) for name in SCRIPT_NAMES
        }

    async def __call__(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run script ``name`` with ``keys`` and ``args`` (both already including the block)."""
        script: Any = self._scripts[name]
        for _ in range(LOAD_TRIES - 1):
            try:
                return await script(keys=keys, args=args)  # reloads once on NOSCRIPT itself
            except NoScriptError:
                continue  # flushed again between the load and the call
        return await script(keys=keys, args=args)

    def sha(self, name: str) -> str:
        """The SHA1 of a script as loaded (for tests and diagnostics)."""
        return self._scripts[name].sha

    async def durable(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run a script, then wait until its writes are fsynced to the append-only file.

        Script and ``WAITAOF 1 0`` travel in one pipeline, so they share a connection and
        WAITAOF covers exactly this script's writes.
        """
        script = self._scripts[name]
        for _ in range(LOAD_TRIES):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                pipe.execute_command("WAITAOF", 1, 0, WAITAOF_TIMEOUT_MS)
                result, ack = await pipe.execute(raise_on_error=False)
            if isinstance(result, NoScriptError):
                script.sha = await self._client.script_load(str(script.script))
                continue
            if isinstance(result, Exception):
                raise result
            if isinstance(ack, Exception) or int(ack[0]) < 1:
                log.error(
                    "%s: the append-only file did not confirm an fsync within %d ms (%s)",
                    name,
                    WAITAOF_TIMEOUT_MS,
                    ack,
                )
            return result
        raise NoScriptError(f"script {name} could not be loaded")
