"""Conformance suite for :class:`roost.runtime.stores.ArtifactStore` implementations.

Every artifact store, built in or from a plugin, must pass it. Subclass
:class:`ArtifactStoreConformance` in a test module under a name pytest collects and say how to
make a store::

    from roost.runtime.testing.artifact_conformance import ArtifactStoreConformance


    class TestMyStore(ArtifactStoreConformance):
        def make_store(self, tmp_path):
            return MyStore(bucket=..., prefix=str(tmp_path))

This module imports pytest, which roost-core does not depend on: import it only from test code
(``roost.runtime.testing`` itself does not import it). The tests are synchronous and run their
async body with :func:`asyncio.run` (override :meth:`ArtifactStoreConformance.run_async` to use
another loop), so they need no pytest plugin.

The contract these tests state:

* the id is the SHA-256 (64 lowercase hex characters) of the content; ``size`` is its length;
* ``read`` returns the exact bytes; ``stat``/``read`` without a kind find the only stored kind,
  and refuse with :class:`~roost.runtime.errors.BadInput` naming the kinds when there are
  several;
* putting the same content and kind again (also concurrently) leaves one artifact, and the
  first put wins: every put returns the stored artifact, with the first put's metadata and
  ``created_at``;
* missing artifacts raise :class:`~roost.runtime.errors.NotFound` (``exists`` returns False);
* invalid ids (not 64 lowercase hex) and kinds (not 1-16 characters from ``a-z 0-9``) raise
  :class:`~roost.runtime.errors.BadInput`, before storage is touched;
* metadata is kept as JSON; metadata that is not JSON raises ``BadInput``.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from roost.runtime.errors import BadInput, NotFound
from roost.runtime.models import Artifact
from roost.runtime.stores import ArtifactStore

__all__ = ["BAD_IDS", "BAD_KINDS", "ArtifactStoreConformance"]

BAD_IDS: list[Any] = [
    "",
    "../x",
    "a" * 63,
    "a" * 65,
    "A" * 64,
    "g" * 64,
    "a" * 64 + "\n",
    "../" + "a" * 61,
    "/" + "a" * 63,
    "aa/" + "a" * 61,
    "a" * 60 + "/../",
    None,
    64,
]
"""Artifact ids every store must refuse with BadInput."""

BAD_KINDS: list[Any] = [
    "",
    "../x",
    "json/../..",
    "JSON",
    "tar.gz",
    ".json",
    "js on",
    "json\n",
    "a" * 17,
    7,
]
"""Kinds every store must refuse with BadInput."""

StoreTest = Callable[[ArtifactStore], Awaitable[None]]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStoreConformance(ABC):
    """Tests every :class:`~roost.runtime.stores.ArtifactStore` must pass.

    Subclass it (with a name starting with ``Test``) and implement :meth:`make_store`.
    """

    large_size: ClassVar[int] = 8 * 1024 * 1024
    """Size in bytes of the content used by :meth:`test_large_content`."""

    concurrency: ClassVar[int] = 16
    """How many puts :meth:`test_concurrent_puts_of_same_content` runs at once."""

    @abstractmethod
    def make_store(self, tmp_path: Path) -> ArtifactStore | Awaitable[ArtifactStore]:
        """Return an empty store for one test (may be a coroutine).

        Args:
            tmp_path: a fresh directory owned by the test.
        """

    async def close_store(self, store: ArtifactStore) -> None:
        """Release what :meth:`make_store` opened (default: nothing)."""
        return None

    def run_async(self, main: Callable[[], Awaitable[None]]) -> None:
        """Run one test's async body to completion (default: :func:`asyncio.run`)."""

        async def wrapper() -> None:
            await main()

        asyncio.run(wrapper())

    def check(self, tmp_path: Path, test: StoreTest) -> None:
        """Make a store, run ``test`` against it, close it."""

        async def main() -> None:
            made = self.make_store(tmp_path)
            store: ArtifactStore = await made if inspect.isawaitable(made) else made
            try:
                await test(store)
            finally:
                await self.close_store(store)

        self.run_async(main)

    # -- ids, contents, kinds ---------------------------------------------------------------

    def test_id_is_sha256_of_content(self, tmp_path: Path) -> None:
        """The id is the SHA-256 of the content; kind and size are reported."""

        async def test(store: ArtifactStore) -> None:
            artifact = await store.put(b"hello roost", kind="txt")
            assert isinstance(artifact, Artifact)
            assert artifact.artifact_id == _sha(b"hello roost")
            assert artifact.kind == "txt"
            assert artifact.size == len(b"hello roost")

        self.check(tmp_path, test)

    def test_round_trip(self, tmp_path: Path) -> None:
        """``read`` returns the exact bytes; ``stat`` matches what ``put`` returned."""
        content = bytes(range(256)) * 3
        metadata = {"verdict": "reachable"}

        async def test(store: ArtifactStore) -> None:
            put = await store.put(content, kind="bin", metadata=metadata)
            assert await store.read(put.artifact_id, "bin") == content
            assert await store.read(put.artifact_id) == content
            assert await store.exists(put.artifact_id, "bin") is True
            stat = await store.stat(put.artifact_id, "bin")
            assert stat == await store.stat(put.artifact_id)
            assert (stat.artifact_id, stat.kind, stat.size, stat.metadata) == (
                put.artifact_id,
                "bin",
                len(content),
                metadata,
            )
            assert stat.created_at == put.created_at

        self.check(tmp_path, test)

    def test_empty_content(self, tmp_path: Path) -> None:
        """Empty content is an artifact like any other."""

        async def test(store: ArtifactStore) -> None:
            artifact = await store.put(b"", kind="txt")
            assert artifact.artifact_id == _sha(b"")
            assert artifact.size == 0
            assert await store.read(artifact.artifact_id, "txt") == b""

        self.check(tmp_path, test)

    def test_idempotent_put_first_put_wins(self, tmp_path: Path) -> None:
        """A second put of the same content and kind changes nothing; the first wins."""

        async def test(store: ArtifactStore) -> None:
            first = await store.put(b"same", kind="txt", metadata={"n": 1})
            second = await store.put(b"same", kind="txt", metadata={"n": 2})
            assert second.artifact_id == first.artifact_id
            assert second == first
            assert second.metadata == {"n": 1}
            assert await store.stat(first.artifact_id, "txt") == first
            assert await store.read(first.artifact_id) == b"same"

        self.check(tmp_path, test)

    def test_same_content_under_several_kinds(self, tmp_path: Path) -> None:
        """One content under two kinds: both exist; no kind given is ambiguous."""

        async def test(store: ArtifactStore) -> None:
            as_json = await store.put(b'{"a": 1}', kind="json", metadata={"k": "json"})
            as_txt = await store.put(b'{"a": 1}', kind="txt", metadata={"k": "txt"})
            artifact_id = as_json.artifact_id
            assert as_txt.artifact_id == artifact_id
            assert await store.exists(artifact_id, "json")
            assert await store.exists(artifact_id, "txt")
            assert not await store.exists(artifact_id, "png")
            assert (await store.stat(artifact_id, "json")).metadata == {"k": "json"}
            assert (await store.stat(artifact_id, "txt")).metadata == {"k": "txt"}
            assert await store.read(artifact_id, "txt") == b'{"a": 1}'
            with pytest.raises(BadInput) as excinfo:
                await store.stat(artifact_id)
            assert not isinstance(excinfo.value, NotFound)
            assert "json" in str(excinfo.value) and "txt" in str(excinfo.value)
            with pytest.raises(BadInput, match="json"):
                await store.read(artifact_id)
            with pytest.raises(NotFound):
                await store.stat(artifact_id, "png")

        self.check(tmp_path, test)

    def test_distinct_contents_get_distinct_ids(self, tmp_path: Path) -> None:
        """Different contents get different ids and keep their bytes."""

        async def test(store: ArtifactStore) -> None:
            a = await store.put(b"a", kind="txt")
            b = await store.put(b"b", kind="txt")
            assert a.artifact_id != b.artifact_id
            assert await store.read(a.artifact_id) == b"a"
            assert await store.read(b.artifact_id) == b"b"

        self.check(tmp_path, test)

    # -- missing and invalid ----------------------------------------------------------------

    def test_missing_artifact(self, tmp_path: Path) -> None:
        """Missing artifacts raise NotFound; ``exists`` says False."""
        missing = _sha(b"never stored")

        async def test(store: ArtifactStore) -> None:
            with pytest.raises(NotFound):
                await store.stat(missing)
            with pytest.raises(NotFound):
                await store.stat(missing, "json")
            with pytest.raises(NotFound):
                await store.read(missing)
            with pytest.raises(NotFound):
                await store.read(missing, "json")
            assert await store.exists(missing, "json") is False
            # A neighbour sharing the id's first characters must not confuse the store.
            await store.put(b"something else", kind="json")
            with pytest.raises(NotFound):
                await store.read(missing)

        self.check(tmp_path, test)

    @pytest.mark.parametrize("bad_id", BAD_IDS, ids=repr)
    def test_invalid_id_is_bad_input(self, tmp_path: Path, bad_id: Any) -> None:
        """Ids that are not 64 lowercase hex characters raise BadInput, not NotFound."""

        async def test(store: ArtifactStore) -> None:
            for call in (
                lambda: store.stat(bad_id),
                lambda: store.stat(bad_id, "json"),
                lambda: store.read(bad_id),
                lambda: store.read(bad_id, "json"),
                lambda: store.exists(bad_id, "json"),
            ):
                with pytest.raises(BadInput) as excinfo:
                    await call()
                assert not isinstance(excinfo.value, NotFound)

        self.check(tmp_path, test)

    def test_uppercase_id_of_stored_artifact_is_bad_input(self, tmp_path: Path) -> None:
        """Ids are case-sensitive: the uppercase form of a stored id is invalid."""

        async def test(store: ArtifactStore) -> None:
            artifact = await store.put(b"case", kind="txt")
            upper = artifact.artifact_id.upper()
            assert upper != artifact.artifact_id
            with pytest.raises(BadInput):
                await store.read(upper, "txt")

        self.check(tmp_path, test)

    @pytest.mark.parametrize("bad_kind", BAD_KINDS, ids=repr)
    def test_invalid_kind_is_bad_input(self, tmp_path: Path, bad_kind: Any) -> None:
        """Kinds outside ``[a-z0-9]{1,16}`` raise BadInput and store nothing."""
        valid_id = _sha(b"x")

        async def test(store: ArtifactStore) -> None:
            for call in (
                lambda: store.put(b"x", kind=bad_kind),
                lambda: store.stat(valid_id, bad_kind),
                lambda: store.read(valid_id, bad_kind),
                lambda: store.exists(valid_id, bad_kind),
            ):
                with pytest.raises(BadInput) as excinfo:
                    await call()
                assert not isinstance(excinfo.value, NotFound)
            assert not await store.exists(valid_id, "json")

        self.check(tmp_path, test)

    # -- metadata ---------------------------------------------------------------------------

    def test_metadata_is_kept(self, tmp_path: Path) -> None:
        """JSON metadata comes back equal from ``put`` and ``stat``."""
        metadata: dict[str, Any] = {
            "verdict": "reachable",
            "checks_completed": 3,
            "score": 0.25,
            "nested": {"list": [1, "two", None, True, {"deep": []}]},
            "unicode": "caf\u00e9 \u2713",
        }

        async def test(store: ArtifactStore) -> None:
            put = await store.put(b"report", kind="json", metadata=metadata)
            assert put.metadata == metadata
            assert (await store.stat(put.artifact_id, "json")).metadata == metadata
            plain = await store.put(b"no metadata", kind="json")
            assert plain.metadata == {}

        self.check(tmp_path, test)

    @pytest.mark.parametrize(
        "metadata",
        [{"x": object()}, {"x": float("nan")}, {"x": float("inf")}, {"x": {1: "int key"}}],
        ids=["object", "nan", "inf", "int-key"],
    )
    def test_metadata_that_is_not_json_is_bad_input(
        self, tmp_path: Path, metadata: dict[str, Any]
    ) -> None:
        """Metadata that is not JSON raises BadInput and stores nothing."""

        async def test(store: ArtifactStore) -> None:
            with pytest.raises(BadInput):
                await store.put(b"x", kind="json", metadata=metadata)
            assert not await store.exists(_sha(b"x"), "json")

        self.check(tmp_path, test)

    # -- concurrency and size ---------------------------------------------------------------

    def test_concurrent_puts_of_same_content(self, tmp_path: Path) -> None:
        """Racing puts of one content agree on one stored artifact."""
        content = b"raced" * 1000
        n = self.concurrency

        async def test(store: ArtifactStore) -> None:
            results = await asyncio.gather(
                *(store.put(content, kind="txt", metadata={"writer": i}) for i in range(n))
            )
            first = results[0]
            assert all(result == first for result in results), results
            assert first.metadata["writer"] in range(n)
            assert await store.stat(first.artifact_id, "txt") == first
            assert await store.read(first.artifact_id) == content

        self.check(tmp_path, test)

    def test_concurrent_puts_of_different_content(self, tmp_path: Path) -> None:
        """Concurrent puts of different contents all land."""
        contents = [f"item {i}".encode() for i in range(self.concurrency)]

        async def test(store: ArtifactStore) -> None:
            results = await asyncio.gather(*(store.put(c, kind="txt") for c in contents))
            assert [r.artifact_id for r in results] == [_sha(c) for c in contents]
            reads = await asyncio.gather(*(store.read(r.artifact_id) for r in results))
            assert reads == contents

        self.check(tmp_path, test)

    def test_large_content(self, tmp_path: Path) -> None:
        """Large content (``large_size`` bytes) round-trips."""
        content = random.Random(0).randbytes(self.large_size)

        async def test(store: ArtifactStore) -> None:
            artifact = await store.put(content, kind="bin")
            assert artifact.artifact_id == _sha(content)
            assert artifact.size == len(content)
            assert await store.read(artifact.artifact_id, "bin") == content

        self.check(tmp_path, test)

    def test_url_is_a_url(self, tmp_path: Path) -> None:
        """``store.url`` is a URL string."""

        async def test(store: ArtifactStore) -> None:
            assert isinstance(store.url, str)
            assert "://" in store.url

        self.check(tmp_path, test)
