"""`roost` is a PEP 420 namespace: no distribution may ship `roost/__init__.py`."""

from __future__ import annotations

from pathlib import Path

import roost
import roost.runtime

REPO = Path(__file__).resolve().parents[3]
SOURCE_TREES = ("packages", "apps", "plugins")


def test_repo_root_is_found() -> None:
    assert (REPO / "pyproject.toml").is_file()
    assert (REPO / "packages" / "roost-core" / "src" / "roost" / "runtime").is_dir()


def test_no_roost_init_in_any_source_tree() -> None:
    roost_dirs = [
        d for tree in SOURCE_TREES for d in (REPO / tree).glob("*/src/roost") if d.is_dir()
    ]
    assert roost_dirs, "found no src/roost directory: the test would check nothing"
    offenders = [str(d / "__init__.py") for d in roost_dirs if (d / "__init__.py").exists()]
    # Also catch a stray one deeper down, e.g. src/foo/roost/__init__.py.
    offenders += [
        str(p)
        for tree in SOURCE_TREES
        for p in (REPO / tree).glob("*/src/**/roost/__init__.py")
        if str(p) not in offenders
    ]
    assert offenders == [], f"roost is a namespace package; remove {offenders}"


def test_roost_imports_as_a_namespace() -> None:
    assert roost.__file__ is None
    assert not hasattr(roost, "__all__")
    assert len(list(roost.__path__)) >= 1
    assert roost.runtime.__file__ is not None
    assert Path(roost.runtime.__file__).parent.parts[-2:] == ("roost", "runtime")
