"""The ``roost`` command line (placeholder until the CLI lands)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """Run the ``roost`` command."""
    sys.stderr.write("roost: the command line is not built yet\n")
    raise SystemExit(1)
