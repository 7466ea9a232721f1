"""Content-addressed file artifact store (placeholder; filled in by the artifacts work)."""

from __future__ import annotations

__all__ = ["FileArtifactStore"]


class FileArtifactStore:
    """Stores artifacts as files named by the SHA-256 of their content."""

    @classmethod
    def from_url(cls, url: str) -> FileArtifactStore:
        """Open the store at a ``file://`` URL or a plain directory path."""
        raise NotImplementedError
