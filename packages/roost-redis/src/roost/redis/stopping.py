"""A worker process's stop policy; it lives in :mod:`roost.runtime.stopping`.

Kept so that ``roost.redis.stopping`` names the same objects for its importers.
"""

from roost.runtime.stopping import (
    EXIT_AFTER_STOP,
    SAME_SIGNAL_WINDOW,
    STOP_BOUND,
    ExitDeadline,
    StopSignals,
    exit_now,
)

__all__ = [
    "EXIT_AFTER_STOP",
    "SAME_SIGNAL_WINDOW",
    "STOP_BOUND",
    "ExitDeadline",
    "StopSignals",
    "exit_now",
]
