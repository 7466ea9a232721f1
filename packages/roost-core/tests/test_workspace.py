"""A work id never escapes the workspace root: one safe leaf directory per id."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from roost.runtime import FileArtifactStore, StepContext
from roost.runtime.workspace import workspace_dir, workspace_name

ADVERSARIAL = [
    "A:B/C",
    "A:B",
    "x/../../../escaped",
    "../escaped",
    "..",
    ".",
    "",
    "/etc/passwd",
    "a\\b",
    "café/日本語",
    "日本語",
    "ABC",
    "abc.",
    "-rf",
    "a\x00b",
    "line\nbreak",
    "x" * 10_000,
    "y" * 101,
    "\ud800",  # a lone surrogate
]


def assert_leaf(root: Path, path: Path) -> None:
    assert path.parent == root
    assert path.name not in ("", ".", "..")
    assert "/" not in path.name and "\\" not in path.name and "\x00" not in path.name
    assert len(path.name.encode()) <= 255


@pytest.mark.parametrize("work_id", ADVERSARIAL, ids=lambda v: repr(v)[:30])
def test_adversarial_ids_map_to_one_leaf_under_the_root(tmp_path: Path, work_id: str) -> None:
    root = tmp_path / "ws"
    path = workspace_dir(root, work_id)
    assert_leaf(root, path)
    path.mkdir(parents=True)
    assert path.resolve().parent == root.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]  # nothing landed outside


def test_plain_ids_are_their_own_directory() -> None:
    for work_id in ("0123456789abcdef0123456789abcdef", "job-1", "a_b", "z" * 100):
        assert workspace_name(work_id) == work_id


def test_other_ids_get_a_readable_slug_and_a_hash() -> None:
    assert workspace_name("A:B/C").startswith("A-B-C.")
    assert workspace_name("x/../../../escaped").startswith("x-escaped.")
    assert workspace_name("café/日本語").startswith("cafe.")
    assert workspace_name("日本語").startswith("id.")
    assert len(workspace_name("x" * 10_000)) == 48 + 1 + 16


def test_the_mapping_is_stable() -> None:
    """Fixed values: every worker and every later version must find the same directory."""
    assert workspace_name("A:B/C") == "A-B-C.1d597f8703658e99"
    assert workspace_name("x/../../../escaped") == "x-escaped.ce4956cf9e6f5136"


def test_distinct_ids_never_share_a_directory() -> None:
    rng = random.Random(1234)
    alphabet = "aAbB01_-.:/@ é日\\"
    ids = set(ADVERSARIAL)
    for _ in range(5000):
        ids.add("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))))
    names = [workspace_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    folded = [n.lower() for n in names]  # a case-insensitive file system
    assert len(set(folded)) == len(ids)


def test_step_context_workspace_stays_under_the_root(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    for work_id in ("A:B", "A:B/C", "x/../../../escaped"):
        ctx = StepContext(
            work_id=work_id,
            version=1,
            attempt=1,
            worker_id="w",
            artifacts=FileArtifactStore(tmp_path / "artifacts"),
            workspace_root=root,
        )
        path = ctx.workspace
        assert path.is_dir() and path.parent == root
        (path / "note.txt").write_text(work_id)
    # A:B/C did not nest inside A:B, and nothing escaped.
    assert len(list(root.iterdir())) == 3
    assert all(len(list(d.iterdir())) == 1 for d in root.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]
