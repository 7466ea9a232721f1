"""How ``roost`` logs: a level, text or JSON Lines, and tracebacks of a bounded length.

``--log-level`` / ``ROOST_LOG_LEVEL`` and ``--log-format`` / ``ROOST_LOG_FORMAT`` apply to
every command. Records go to stderr. In JSON, each record is one object on one line with
``ts`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``, the record's extra fields
(``work_id``, ``engine``, ``version``, ``attempt``, ``worker``... when it has them) and
``traceback`` when it carries an exception.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = [
    "DEFAULT_TRACEBACK_LINES",
    "JsonFormatter",
    "TextFormatter",
    "configure",
    "exception_of",
    "extras",
    "format_traceback",
    "iso",
    "json_line",
]

DEFAULT_TRACEBACK_LINES = 8
"""Text output shows about this many last lines of a traceback (the frames nearest the
error, whole frames only)."""

_MARKERS = re.compile(r"\s*[\^~]+[\s\^~]*")

_STANDARD = frozenset({*vars(logging.makeLogRecord({})), "message", "asctime", "taskName"})


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record got through ``extra=`` (``work_id``, ``attempt``...)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def exception_of(record: logging.LogRecord) -> BaseException | None:
    """The exception a record carries: its ``exc_info``, or an ``exception`` extra field.

    The runtime logs a failed step with the exception as an extra field, so that logging
    set up elsewhere prints one line for it, not a traceback per attempt.
    """
    if record.exc_info and record.exc_info[1] is not None:
        return record.exc_info[1]
    extra = getattr(record, "exception", None)
    return extra if isinstance(extra, BaseException) else None


def format_traceback(exc_info: BaseException | tuple[Any, ...], lines: int | None) -> str:
    """The traceback of ``exc_info`` (a tuple or an exception); about its last ``lines`` lines.

    ``None`` keeps it whole. A cut traceback starts at a frame (``File ...``), leaves out
    the ``^^^`` markers, and begins with a line saying how much was left out.
    """
    exc: BaseException = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    text = "".join(traceback.format_exception(exc)).rstrip()
    if lines is None:
        return text
    all_lines = [line for line in text.splitlines() if not _MARKERS.fullmatch(line)]
    if len(all_lines) <= lines:
        return "\n".join(all_lines)
    start = len(all_lines) - lines
    while start < len(all_lines) - 1 and not all_lines[start].lstrip().startswith("File "):
        start += 1
    note = f"... {start} earlier lines (--full-tracebacks)"
    return "\n".join([note, *all_lines[start:]])


def json_line(fields: dict[str, Any]) -> str:
    """One JSON Lines entry (non-JSON values are written as strings)."""
    return json.dumps(fields, default=str, ensure_ascii=False, separators=(",", ":"))


def iso(ts: float) -> str:
    """``2026-01-02T03:04:05.678+00:00``: epoch seconds in ISO 8601, UTC."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """``{"ts", "level", "logger", "message", ...extras, "traceback"?}``."""
        fields: dict[str, Any] = {
            "ts": iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **extras(record),
        }
        exc = exception_of(record)
        if exc is not None:
            fields.pop("exception", None)
            fields["traceback"] = format_traceback(exc, None)
        return json_line(fields)


class TextFormatter(logging.Formatter):
    """``14:03:07  message``, then the traceback's last lines, indented."""

    def __init__(self, traceback_lines: int | None = DEFAULT_TRACEBACK_LINES) -> None:
        super().__init__("%(asctime)s  %(message)s", datefmt="%H:%M:%S")
        self.traceback_lines = traceback_lines

    def format(self, record: logging.LogRecord) -> str:
        """The record's line, then its traceback (from ``exc_info`` or ``exception``)."""
        exc = exception_of(record)
        saved, record.exc_info, record.exc_text = record.exc_info, None, None
        try:
            line = super().format(record)
        finally:
            record.exc_info = saved
        if exc is None:
            return line
        trace = format_traceback(exc, self.traceback_lines)
        return line + "".join(f"\n    {t}" for t in trace.splitlines())


def configure(
    level: int,
    fmt: str = "text",
    *,
    traceback_lines: int | None = DEFAULT_TRACEBACK_LINES,
    stream: TextIO | None = None,
    record_filter: logging.Filter | None = None,
) -> None:
    """Send records of Roost's loggers at ``level`` and above to stderr, in ``fmt``.

    Args:
        level: the lowest level shown.
        fmt: ``text`` or ``json``.
        traceback_lines: how much of a traceback text output shows (``None``: all).
        stream: where to write (default ``sys.stderr`` at the time of the call).
        record_filter: a filter on the handler (the worker takes failed steps' records
            from it, to print them with their outcome).
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter = JsonFormatter() if fmt == "json" else TextFormatter(traceback_lines)
    handler.setFormatter(formatter)
    if record_filter is not None:
        handler.addFilter(record_filter)
    logger = logging.getLogger("roost")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
