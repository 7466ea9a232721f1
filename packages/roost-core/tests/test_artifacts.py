from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from roost.runtime import FileArtifactStore, Registry, get_plugin_manager
from roost.runtime.artifacts import validate_artifact_id, validate_kind
from roost.runtime.errors import BadInput, NotFound
from roost.runtime.stores import ArtifactStore
from roost.runtime.testing.artifact_conformance import ArtifactStoreConformance


class TestFileArtifactStoreConformance(ArtifactStoreConformance):
    def make_store(self, tmp_path: Path) -> ArtifactStore:
        return FileArtifactStore(tmp_path / "artifacts")


class TestAsyncFactoryConformance(ArtifactStoreConformance):
    """The suite also accepts a coroutine factory and calls close_store."""

    closed: list[ArtifactStore]

    async def make_store(self, tmp_path: Path) -> ArtifactStore:
        await asyncio.sleep(0)
        return FileArtifactStore.from_url((tmp_path / "store").as_uri())

    async def close_store(self, store: ArtifactStore) -> None:
        self.closed = [*getattr(self, "closed", []), store]

    def test_close_store_was_called(self, tmp_path: Path) -> None:
        async def test(store: ArtifactStore) -> None:
            assert not getattr(self, "closed", [])

        self.check(tmp_path, test)
        assert len(self.closed) == 1


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> FileArtifactStore:
    return FileArtifactStore(tmp_path / "root")


async def test_layout_content_and_metadata_files(store: FileArtifactStore) -> None:
    artifact = await store.put(b"{}", kind="json", metadata={"a": 1})
    aid = artifact.artifact_id
    content = store.root / aid[:2] / f"{aid}.json"
    meta = store.root / aid[:2] / f"{aid}.json.meta.json"
    assert content.read_bytes() == b"{}"
    stored = json.loads(meta.read_text())
    assert stored["kind"] == "json"
    assert stored["size"] == 2
    assert stored["metadata"] == {"a": 1}
    assert stored["created_at"] == artifact.created_at > 0
    assert artifact.uri == content.as_uri()
    # no temporary files left behind
    assert sorted(p.name for p in content.parent.iterdir()) == [content.name, meta.name]


async def test_second_put_keeps_first_metadata_on_disk(store: FileArtifactStore) -> None:
    first = await store.put(b"report", kind="json", metadata={"attempt": 1})
    meta = store.root / first.artifact_id[:2] / f"{first.artifact_id}.json.meta.json"
    before = meta.read_bytes()
    second = await store.put(b"report", kind="json", metadata={"attempt": 2})
    assert second.metadata == {"attempt": 1}
    assert meta.read_bytes() == before


async def test_interrupted_put_is_missing_then_repaired(store: FileArtifactStore) -> None:
    """Content without its metadata file (a crash between the two writes) counts as missing."""
    aid = sha(b"half")
    directory = store.root / aid[:2]
    directory.mkdir(parents=True)
    (directory / f"{aid}.txt").write_bytes(b"half")
    assert not await store.exists(aid, "txt")
    with pytest.raises(NotFound):
        await store.stat(aid)
    artifact = await store.put(b"half", kind="txt", metadata={"fixed": True})
    assert artifact.metadata == {"fixed": True}
    assert await store.read(aid) == b"half"


async def test_url_and_from_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "with space"
    store = FileArtifactStore.from_url(root.as_uri())
    assert store.root == root.resolve()
    assert store.url == root.resolve().as_uri()
    assert store.url.startswith("file:///")
    assert FileArtifactStore.from_url(str(root)).root == store.root
    assert FileArtifactStore.from_url(f"file://localhost{root}").root == store.root
    monkeypatch.chdir(tmp_path)
    assert FileArtifactStore.from_url("rel/dir").root == (tmp_path / "rel" / "dir").resolve()
    put = await store.put(b"x", kind="txt")
    assert await FileArtifactStore.from_url(store.url).read(put.artifact_id) == b"x"


@pytest.mark.parametrize(
    "url", ["", "   ", "s3://bucket/x", "file://otherhost/abs", "file://relative/dir", "file://"]
)
def test_from_url_rejects(url: str) -> None:
    with pytest.raises(BadInput):
        FileArtifactStore.from_url(url)


def test_registry_opens_file_store(tmp_path: Path) -> None:
    registry = Registry.load(get_plugin_manager(autoload=False))
    store = registry.artifact_store(str(tmp_path / "a"))
    assert isinstance(store, FileArtifactStore)
    assert isinstance(store, ArtifactStore)
    assert registry.artifact_store((tmp_path / "a").as_uri()).url == store.url


async def test_validation_happens_before_filesystem_access(tmp_path: Path) -> None:
    root = tmp_path / "never-created"
    store = FileArtifactStore(root)
    with pytest.raises(BadInput):
        await store.put(b"x", kind="../../etc")
    with pytest.raises(BadInput):
        await store.put(b"x", kind="json", metadata={"x": {1, 2}})
    with pytest.raises(BadInput):
        await store.put("text", kind="txt")  # type: ignore[arg-type]
    with pytest.raises(BadInput):
        await store.read("../" * 10 + "etc/passwd")
    assert not root.exists()


async def test_bad_input_does_not_reach_a_thread(
    store: FileArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []

    async def spy(func: object, *args: object) -> object:
        calls.append(func)
        raise AssertionError("touched the filesystem")

    monkeypatch.setattr(asyncio, "to_thread", spy)
    for coro in (
        store.put(b"x", kind="JSON"),
        store.stat("a" * 63),
        store.read("A" * 64, "json"),
        store.exists("a" * 64, "json/../.."),
        store.kinds("../x"),
    ):
        with pytest.raises(BadInput):
            await coro
    assert calls == []


async def test_symlink_escaping_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    aid = sha(b"evil")
    (root / aid[:2]).symlink_to(outside, target_is_directory=True)
    store = FileArtifactStore(root)
    with pytest.raises(BadInput, match="outside the store root"):
        await store.put(b"evil", kind="txt")
    with pytest.raises(BadInput, match="outside the store root"):
        await store.stat(aid, "txt")
    assert list(outside.iterdir()) == []


async def test_memoryview_and_bytearray_content(store: FileArtifactStore) -> None:
    a = await store.put(bytearray(b"abc"), kind="txt")  # type: ignore[arg-type]
    b = await store.put(memoryview(b"abc"), kind="txt")  # type: ignore[arg-type]
    assert a == b
    assert a.artifact_id == sha(b"abc")


async def test_kinds_lists_stored_kinds(store: FileArtifactStore) -> None:
    artifact = await store.put(b"k", kind="txt")
    await store.put(b"k", kind="md")
    assert await store.kinds(artifact.artifact_id) == ["md", "txt"]
    assert await store.kinds(sha(b"none")) == []


async def test_tuple_metadata_reads_back_as_list(store: FileArtifactStore) -> None:
    artifact = await store.put(b"t", kind="txt", metadata={"pair": (1, 2)})
    assert artifact.metadata == {"pair": [1, 2]}
    assert (await store.stat(artifact.artifact_id)).metadata == {"pair": [1, 2]}


async def test_io_runs_off_the_event_loop(
    store: FileArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    real_replace = os.replace

    def spying_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        seen.append(threading.get_ident())
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spying_replace)
    await store.put(b"threaded", kind="txt")
    assert seen and loop_thread not in seen


def test_validators() -> None:
    assert validate_artifact_id("a" * 64) == "a" * 64
    assert validate_kind("json") == "json"
    for bad in ("a" * 64 + "\n", "A" * 64, 3):
        with pytest.raises(BadInput, match="invalid artifact id"):
            validate_artifact_id(bad)
    for bad in ("json\n", "x" * 17, "j.s"):
        with pytest.raises(BadInput, match="invalid artifact kind"):
            validate_kind(bad)
