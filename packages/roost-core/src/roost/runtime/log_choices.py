"""The log levels and formats the settings accept (``ROOST_LOG_LEVEL``, ``ROOST_LOG_FORMAT``).

Apart from :mod:`roost.runtime.settings` so that a command line can list them in its help
without importing pydantic-settings.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "LogFormat", "LogLevel"]

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LogFormat = Literal["text", "json"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)
