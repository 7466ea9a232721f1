"""Content-addressed file artifact store (the built-in ``file`` scheme).

Layout under the root directory::

    <root>/<id[:2]>/<id>.<kind>              the content
    <root>/<id[:2]>/<id>.<kind>.meta.json    {"artifact_id", "kind", "size", "metadata",
                                              "created_at"}

The metadata file is written last and marks the artifact as stored: content without a
metadata file (a put interrupted by a crash) counts as missing and the next put completes it.

Writes are atomic: each file is written to a temporary file in the same directory, flushed to
disk and then moved into place, so a reader never sees half a file. Puts are idempotent: the
same content and kind yield the same id and one copy. **The first put wins**: when the
artifact is already stored, a later put of the same content and kind changes nothing on disk
(not the metadata, not ``created_at``) and returns the stored artifact, so a retried step
that writes the same report gets the same :class:`~roost.runtime.models.Artifact` back.
Store different metadata by storing different content, or keep it in the snapshot.

Every id and kind is validated before the filesystem is touched, and every path is checked to
resolve inside the root. File I/O runs in a worker thread (:func:`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from roost.runtime.errors import BadInput, NotFound, RoostError
from roost.runtime.models import Artifact

__all__ = ["FileArtifactStore", "validate_artifact_id", "validate_kind"]

_ID = re.compile(r"[0-9a-f]{64}")
_KIND = re.compile(r"[a-z0-9]{1,16}")
_META_SUFFIX = ".meta.json"


def validate_artifact_id(artifact_id: object) -> str:
    """Return ``artifact_id`` if it is 64 lowercase hex characters (a SHA-256).

    Raises:
        BadInput: it is not.
    """
    if not isinstance(artifact_id, str) or not _ID.fullmatch(artifact_id):
        raise BadInput(
            f"invalid artifact id {artifact_id!r}: expected 64 lowercase hex characters (SHA-256)"
        )
    return artifact_id


def validate_kind(kind: object) -> str:
    """Return ``kind`` if it is a short extension: 1-16 characters from ``a-z 0-9``.

    Raises:
        BadInput: it is not.
    """
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise BadInput(
            f"invalid artifact kind {kind!r}: use 1-16 characters from a-z 0-9 (e.g. json, txt)"
        )
    return kind


def _check_json_keys(value: object) -> None:
    """Refuse what ``json.dumps`` would silently change: non-string keys, NaN, infinities."""
    if isinstance(value, dict):
        mapping = cast("dict[object, object]", value)
        for key, item in mapping.items():
            if not isinstance(key, str):
                raise BadInput(f"artifact metadata keys must be strings, got {key!r}")
            _check_json_keys(item)
    elif isinstance(value, list | tuple):
        for item in cast("list[object] | tuple[object, ...]", value):
            _check_json_keys(item)
    elif isinstance(value, float) and not math.isfinite(value):
        raise BadInput(f"artifact metadata cannot hold {value!r} (not JSON)")


def _normalize_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return metadata as it will read back from JSON, or raise BadInput."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise BadInput(f"artifact metadata must be a mapping, got {type(metadata).__name__}")
    plain = dict(metadata)
    _check_json_keys(plain)
    try:
        text = json.dumps(plain, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"artifact metadata must be JSON-serializable: {exc}") from None
    normalized: dict[str, Any] = json.loads(text)
    return normalized


def _content_bytes(content: object) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, bytearray):
        return bytes(content)
    if isinstance(content, memoryview):
        return cast("memoryview[int]", content).tobytes()
    raise BadInput(
        f"artifact content must be bytes, got {type(content).__name__} "
        "(encode it, or use step_context().put_artifact for str/JSON content)"
    )


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(directory: Path, data: bytes) -> Path:
    """Write ``data`` to a new temporary file in ``directory``, flushed to disk."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


def _publish_once(tmp: Path, final: Path) -> bool:
    """Move ``tmp`` to ``final`` unless ``final`` exists; return whether it was moved.

    A hard link never replaces an existing file, which makes "first writer wins" atomic.
    Filesystems without hard links fall back to a check followed by ``os.replace``.
    """
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    except OSError:  # pragma: no cover - filesystems without hard links
        if final.exists():
            return False
        os.replace(tmp, final)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return True


class FileArtifactStore:
    """Stores artifacts as files named by the SHA-256 of their content.

    Implements :class:`roost.runtime.stores.ArtifactStore`. The root directory is created on
    the first put.

    Args:
        root: the directory holding the artifacts (relative paths are resolved against the
            current directory once, here).

    Example::

        store = FileArtifactStore.from_url("file:///var/lib/roost/artifacts")
        artifact = await store.put(b'{"ok": true}', kind="json", metadata={"run": 1})
        assert await store.read(artifact.artifact_id) == b'{"ok": true}'
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root: Path = Path(root).expanduser().resolve()
        self.url: str = self.root.as_uri()

    def __repr__(self) -> str:
        return f"FileArtifactStore({str(self.root)!r})"

    @classmethod
    def from_url(cls, url: str) -> FileArtifactStore:
        """Open the store at a ``file://`` URL or a plain directory path.

        Args:
            url: ``file:///abs/path`` (``file://localhost/abs/path`` too; percent-escapes are
                decoded) or a path, absolute or relative to the current directory.

        Raises:
            BadInput: the URL has another scheme, names a remote host or no path.
        """
        if not isinstance(url, str) or not url.strip():  # pyright: ignore[reportUnnecessaryIsInstance]
            raise BadInput(f"artifact store location {url!r} is empty")
        if "://" not in url:
            return cls(url)
        parts = urlsplit(url)
        if parts.scheme != "file":
            raise BadInput(f"{url!r} is not a file:// URL")
        if parts.netloc not in ("", "localhost"):
            raise BadInput(
                f"{url!r} names host {parts.netloc!r}; use file:///absolute/path "
                "(three slashes) for a local directory"
            )
        if not parts.path:
            raise BadInput(f"{url!r} names no directory")
        return cls(unquote(parts.path))

    # -- paths ------------------------------------------------------------------------------

    def _paths(self, artifact_id: str, kind: str) -> tuple[Path, Path]:
        """Content and metadata paths of a validated id and kind."""
        directory = self.root / artifact_id[:2]
        name = f"{artifact_id}.{kind}"
        return directory / name, directory / (name + _META_SUFFIX)

    def _inside_root(self, path: Path) -> Path:
        """Return ``path`` after checking it resolves inside the root (symlinks included)."""
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise BadInput(f"artifact path {path} resolves outside the store root {self.root}")
        return path

    # -- sync workers (run in a thread) -----------------------------------------------------

    def _artifact(self, artifact_id: str, kind: str, meta: Mapping[str, Any]) -> Artifact:
        content, _ = self._paths(artifact_id, kind)
        return Artifact(
            artifact_id=artifact_id,
            kind=kind,
            size=int(meta.get("size", 0)),
            metadata=dict(meta.get("metadata") or {}),
            created_at=float(meta.get("created_at", 0.0)),
            uri=content.as_uri(),
        )

    def _load_meta(self, artifact_id: str, kind: str) -> dict[str, Any] | None:
        content, meta_path = self._paths(artifact_id, kind)
        self._inside_root(meta_path)
        self._inside_root(content)
        try:
            text = meta_path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not content.is_file():
            return None
        try:
            meta = json.loads(text)
        except ValueError as exc:
            raise RoostError(f"artifact metadata {meta_path} is not valid JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise RoostError(f"artifact metadata {meta_path} is not a JSON object")
        return meta  # pyright: ignore[reportUnknownVariableType]

    def _put_sync(self, data: bytes, kind: str, metadata: dict[str, Any]) -> Artifact:
        artifact_id = hashlib.sha256(data).hexdigest()
        content, meta_path = self._paths(artifact_id, kind)
        directory = content.parent
        existing = self._load_meta(artifact_id, kind)
        if existing is not None:
            return self._artifact(artifact_id, kind, existing)
        directory.mkdir(parents=True, exist_ok=True)
        self._inside_root(directory)
        # Same id means same bytes, so replacing a concurrent writer's copy is harmless.
        os.replace(_write_temp(directory, data), content)
        meta: dict[str, Any] = {
            "artifact_id": artifact_id,
            "kind": kind,
            "size": len(data),
            "metadata": metadata,
            "created_at": time.time(),
        }
        meta_bytes = json.dumps(meta, indent=2, sort_keys=True).encode()
        if not _publish_once(_write_temp(directory, meta_bytes), meta_path):
            stored = self._load_meta(artifact_id, kind)
            if stored is not None:
                return self._artifact(artifact_id, kind, stored)
        _fsync_dir(directory)
        return self._artifact(artifact_id, kind, meta)

    def _kinds_sync(self, artifact_id: str) -> list[str]:
        directory = self._inside_root(self.root / artifact_id[:2])
        prefix = artifact_id + "."
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return []
        kinds: list[str] = []
        for name in names:
            if name.startswith(prefix) and name.endswith(_META_SUFFIX):
                kind = name[len(prefix) : -len(_META_SUFFIX)]
                if _KIND.fullmatch(kind) and (directory / f"{prefix}{kind}").is_file():
                    kinds.append(kind)
        return sorted(kinds)

    def _resolve_kind(self, artifact_id: str, kind: str | None) -> str:
        if kind is not None:
            return kind
        kinds = self._kinds_sync(artifact_id)
        if not kinds:
            raise NotFound(f"artifact {artifact_id} not found in {self.url}")
        if len(kinds) > 1:
            raise BadInput(
                f"artifact {artifact_id} is stored as several kinds ({', '.join(kinds)}); "
                "pass the kind"
            )
        return kinds[0]

    def _stat_sync(self, artifact_id: str, kind: str | None) -> Artifact:
        kind = self._resolve_kind(artifact_id, kind)
        meta = self._load_meta(artifact_id, kind)
        if meta is None:
            raise NotFound(f"artifact {artifact_id}.{kind} not found in {self.url}")
        return self._artifact(artifact_id, kind, meta)

    def _read_sync(self, artifact_id: str, kind: str | None) -> bytes:
        artifact = self._stat_sync(artifact_id, kind)
        content, _ = self._paths(artifact_id, artifact.kind)
        try:
            return content.read_bytes()
        except FileNotFoundError:
            missing = f"artifact {artifact_id}.{artifact.kind} not found in {self.url}"
            raise NotFound(missing) from None

    # -- the ArtifactStore protocol ---------------------------------------------------------

    async def put(
        self, content: bytes, *, kind: str, metadata: Mapping[str, Any] | None = None
    ) -> Artifact:
        """Store ``content`` under its SHA-256 with ``kind`` and ``metadata``.

        Storing content that is already stored under ``kind`` changes nothing and returns the
        stored artifact (the first put's metadata and ``created_at`` are kept).

        Args:
            content: the bytes to store.
            kind: a short extension, 1-16 characters from ``a-z 0-9``.
            metadata: a small JSON object kept beside the content.

        Returns:
            The stored artifact (id, kind, size, metadata, created_at, ``file://`` uri).

        Raises:
            BadInput: invalid kind, non-bytes content or metadata that is not JSON.
        """
        kind = validate_kind(kind)
        data = _content_bytes(content)
        meta = _normalize_metadata(metadata)
        return await asyncio.to_thread(self._put_sync, data, kind, meta)

    async def stat(self, artifact_id: str, kind: str | None = None) -> Artifact:
        """Return the artifact's description.

        Args:
            artifact_id: the SHA-256 of the content.
            kind: the kind it was stored under; ``None`` finds the only stored kind.

        Raises:
            BadInput: invalid id or kind, or ``kind=None`` and several kinds are stored.
            NotFound: no such artifact.
        """
        artifact_id = validate_artifact_id(artifact_id)
        if kind is not None:
            kind = validate_kind(kind)
        return await asyncio.to_thread(self._stat_sync, artifact_id, kind)

    async def read(self, artifact_id: str, kind: str | None = None) -> bytes:
        """Return the artifact's content (``kind=None``: the only stored kind).

        Raises:
            BadInput: invalid id or kind, or ``kind=None`` and several kinds are stored.
            NotFound: no such artifact.
        """
        artifact_id = validate_artifact_id(artifact_id)
        if kind is not None:
            kind = validate_kind(kind)
        return await asyncio.to_thread(self._read_sync, artifact_id, kind)

    async def exists(self, artifact_id: str, kind: str) -> bool:
        """Return whether the artifact is stored under ``kind``.

        Raises:
            BadInput: invalid id or kind.
        """
        artifact_id = validate_artifact_id(artifact_id)
        kind = validate_kind(kind)
        meta = await asyncio.to_thread(self._load_meta, artifact_id, kind)
        return meta is not None

    async def kinds(self, artifact_id: str) -> list[str]:
        """Return the kinds ``artifact_id`` is stored under, sorted (empty if none).

        Raises:
            BadInput: invalid id.
        """
        artifact_id = validate_artifact_id(artifact_id)
        return await asyncio.to_thread(self._kinds_sync, artifact_id)
