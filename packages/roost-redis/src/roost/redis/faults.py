"""What a Redis error means: an outage to wait out, or a real failure; and how to say it.

Redis answers some commands with an error that says nothing about the command: it cannot
serve anyone right now. Roost treats those exactly like an unreachable server (an *outage*):
the caller backs off and tries again, and no attempt of any item is used. They are:

- the connection is refused, dropped or times out;
- ``BUSY`` (another client's script or function runs past ``busy-reply-threshold``),
  ``LOADING`` (the data set is being loaded after a restart);
- ``OOM`` (``maxmemory`` reached under ``noeviction``: writes are refused until memory is
  freed), ``MISCONF`` (writes refused while the server cannot save to disk);
- ``READONLY`` (the server became a replica, e.g. during a failover), ``MASTERDOWN``,
  ``NOREPLICAS``, ``TRYAGAIN``, ``CLUSTERDOWN``;
- ``NOSCRIPT``, or ``Function not found`` (Roost's Functions library is missing on the node:
  it joined empty, or ``FUNCTION FLUSH`` ran): the library is loaded on that node and the call
  repeated at once (see :class:`roost.redis.scripts.Scripts`); only a library that keeps
  vanishing reaches the caller;
- on a cluster, a redirection (``MOVED``, ``ASK``) or ``TRYAGAIN`` the client gave up
  following, an uncovered slot, or no node reachable to reload the slot map from: the slot
  map is read again at the next call (redis-py marks it stale on these errors).

Every other error (``WRONGTYPE``, a script error, bad arguments) is a real failure of the call.
"""

from __future__ import annotations

import ast
import re
from typing import cast

from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from roost.redis.connection import INFRA_ERRORS

__all__ = [
    "OUTAGE_CODES",
    "describe",
    "error_code",
    "is_missing_function",
    "is_outage",
    "is_unreachable",
]

OUTAGE_CODES = frozenset(
    {
        "BUSY",
        "LOADING",
        "OOM",
        "MISCONF",
        "READONLY",
        "MASTERDOWN",
        "NOREPLICAS",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "NOSCRIPT",
        "UNBLOCKED",
        "MOVED",
        "ASK",
    }
)
"""Error codes that mean "Redis cannot serve right now", whatever the command was."""

_MEANING = {
    "BUSY": "Redis is busy running a script or function (BUSY)",
    "LOADING": "Redis is loading its data set into memory (LOADING)",
    "OOM": "Redis is out of memory and refuses writes (OOM: maxmemory reached, noeviction)",
    "MISCONF": "Redis refuses writes because it cannot save to disk (MISCONF)",
    "READONLY": "Redis is a read-only replica and refuses writes (READONLY)",
    "MASTERDOWN": "Redis is a replica that lost its primary (MASTERDOWN)",
    "NOREPLICAS": "Redis refuses writes: not enough replicas are connected (NOREPLICAS)",
    "TRYAGAIN": "Redis Cluster asks to try again (TRYAGAIN)",
    "CLUSTERDOWN": "Redis Cluster is down (CLUSTERDOWN)",
    "NOSCRIPT": "a Roost script is missing from Redis's script cache (NOSCRIPT)",
    "UNBLOCKED": "a blocking Redis call was cancelled by another client (UNBLOCKED)",
    "MOVED": "Redis Cluster moved the slot and the client could not follow yet (MOVED)",
    "ASK": "Redis Cluster is migrating the slot and the client could not follow yet (ASK)",
    "WRONGPASS": "Redis refused the credentials (WRONGPASS)",
    "NOAUTH": "Redis needs a password (NOAUTH)",
    "NOPERM": "Redis refused the command: the user lacks the permission (NOPERM)",
    "WRONGTYPE": "a Redis key holds the wrong kind of value (WRONGTYPE)",
}


_PIPELINE = re.compile(r"Command # \d+ \(.*\) of pipeline caused error: ", re.DOTALL)


def _reply(exc: BaseException) -> str:
    """The error text Redis sent (without redis-py's note of where in a pipeline it came)."""
    text = str(exc.args[0]) if exc.args else ""
    match = _PIPELINE.match(text)
    if match is None:
        return text
    rest = text[match.end() :]
    try:  # redis-py writes the original args tuple: ('BUSY ...',)
        original: object = ast.literal_eval(rest)
    except (ValueError, SyntaxError):
        return rest
    if isinstance(original, tuple) and original:
        return str(cast(tuple[object, ...], original)[0])
    return rest


def error_code(exc: BaseException) -> str | None:
    """The error code Redis answered with (``OOM``, ``BUSY``...), or None.

    redis-py strips the code from the message of the errors it has a class for and keeps it
    in ``status_code``; for the others the code is the first word of the message.
    """
    if not isinstance(exc, RedisError):
        return None
    code: object = getattr(exc, "status_code", None)
    if isinstance(code, str) and code:
        return code
    if isinstance(exc, ResponseError):
        first = _reply(exc).split(" ", 1)[0]
        if first.isupper() and first.isalpha():
            return first
    return None


def is_unreachable(exc: BaseException) -> bool:
    """True when the connection itself failed (refused, dropped, timed out)."""
    return isinstance(exc, INFRA_ERRORS) and not isinstance(exc, AuthenticationError)


def is_missing_function(exc: BaseException) -> bool:
    """True when the node lacks the function called (Roost's library is not loaded there)."""
    return isinstance(exc, ResponseError) and "function not found" in str(exc).lower()


_CLUSTER_OUTAGES = ("cannot be connected", "not covered", "no targets were found", "ttl exhausted")


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` means Redis cannot serve right now: back off and try again."""
    if isinstance(exc, NoScriptError | AskError) or is_missing_function(exc):
        return True
    if isinstance(exc, ClusterError | RedisClusterException) and not isinstance(exc, ResponseError):
        # redis-py's own cluster errors: gave up retrying (TTL exhausted), no live node to
        # read the slot map from, a slot no node covers (a failover under way). A
        # cross-slot call (a bug, not an outage) is one of these too: it is not matched.
        text = str(exc).lower()
        return any(part in text for part in _CLUSTER_OUTAGES)
    return is_unreachable(exc) or error_code(exc) in OUTAGE_CODES


def _message(exc: BaseException, *, reply_only: bool = False) -> str:
    text = " ".join((_reply(exc) if reply_only else str(exc)).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def describe(exc: BaseException) -> str:
    """One line saying what went wrong with Redis, naming the real cause.

    ``Redis is out of memory and refuses writes (OOM: ...): command not allowed when used
    memory > 'maxmemory'.``, or for a dropped connection ``lost the connection to Redis:
    ConnectionError: ...``.
    """
    if is_missing_function(exc):
        return (
            "Roost's Functions library is missing on the Redis node (Function not found): "
            "loading it there"
        )
    code = error_code(exc)
    if code in _MEANING:
        # An outage is the same whatever the command; for anything else, keep which it was.
        detail = _message(exc, reply_only=code in OUTAGE_CODES)
        if detail.startswith(f"{code} "):
            detail = detail[len(code) + 1 :]
        return f"{_MEANING[code]}: {detail}" if detail else _MEANING[code]
    if is_unreachable(exc):
        return f"lost the connection to Redis: {type(exc).__name__}: {_message(exc)}"
    if isinstance(exc, ResponseError):
        return f"Redis answered with an error: {_message(exc)}"
    return f"{type(exc).__name__}: {_message(exc)}"
