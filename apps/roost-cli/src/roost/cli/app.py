"""The ``roost`` command: a thin layer over :class:`roost.runtime.backends.WorkBackend`.

This module stays light so that a Ctrl-C while the command tree (Redis client, pydantic
models, plugins) is still importing exits quietly. Exit codes: 0 ok, 1 runtime failure,
2 bad input, with one line on stderr and no traceback; 130 when interrupted.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """Run the ``roost`` command."""
    try:
        from roost.cli.commands import app
    except KeyboardInterrupt:
        sys.exit(130)
    app()
