"""Where a work item's workspace lives: one safe directory per work id, under one root.

A work id may hold characters that mean something to a file system (``/``, ``..``, ``:``,
non-ASCII letters), so it is never joined to the root as it is. :func:`workspace_name` maps
each id to one leaf name, the same on every worker and in every Roost version:

- an id made only of lowercase letters, digits, ``-`` and ``_`` (starting with a letter or a
  digit, at most 100 characters; Roost's own 32-hex ids are such ids) is its own name;
- any other id becomes a readable slug of it, a dot, and the first 16 hex digits of the
  SHA-256 of the id: ``A:B/C`` -> ``A-B-C.<hash>``, ``x/../../../escaped`` ->
  ``x-escaped.<hash>``.

Names of the second kind contain a dot and names of the first kind never do, and two ids of
the second kind differ in their hash, so two ids never share a directory (on a
case-insensitive file system too: plain names are lowercase, and hashes are compared whole).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

__all__ = ["workspace_dir", "workspace_name"]

_PLAIN = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
SLUG_LENGTH = 48
HASH_LENGTH = 16


def workspace_name(work_id: str) -> str:
    """The directory name of ``work_id``'s workspace: one path segment, safe on any system.

    Args:
        work_id: any string (it is not validated here).

    Returns:
        The id itself when it is a plain lowercase name, else ``<slug>.<16 hex digits>``.
    """
    if _PLAIN.fullmatch(work_id):
        return work_id
    digest = hashlib.sha256(work_id.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]
    ascii_text = unicodedata.normalize("NFKD", work_id).encode("ascii", "ignore").decode()
    slug = _UNSAFE.sub("-", ascii_text).strip("-_")[:SLUG_LENGTH].rstrip("-_")
    return f"{slug or 'id'}.{digest}"


def workspace_dir(root: Path, work_id: str) -> Path:
    """The workspace directory of ``work_id`` under ``root`` (not created here)."""
    return root / workspace_name(work_id)
