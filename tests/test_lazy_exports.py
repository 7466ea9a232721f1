"""The packages that import their re-exported names on first use still export every name.

``roost.runtime``, ``roost.redis`` and ``roost_watchlist`` resolve the names of ``__all__``
in a module ``__getattr__`` made by :func:`roost.runtime.lazy.lazy_exports` (so that
importing one submodule does not load the package):
each name must resolve to the object its module defines, and importing a light submodule
must stay light.
"""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys

import pytest

PACKAGES = ["roost.runtime", "roost.redis", "roost_watchlist"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert len(module.__all__) >= 5
    for name in module.__all__:
        value = getattr(module, name)
        assert value is not None
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue  # constants, type aliases, pluggy's marker
        home = importlib.import_module(value.__module__)
        assert any(getattr(home, n, None) is value for n in (name, value.__name__)), name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


def test_from_import_of_every_name_works() -> None:
    from roost.redis import RedisBackend, describe_redis_error
    from roost.runtime import BadInput, RoostSettings, WorkState, strictjson
    from roost_watchlist import build_engine

    assert WorkState.DONE == "done" and issubclass(BadInput, Exception)
    assert RoostSettings.__name__ == "RoostSettings" and callable(strictjson.loads)
    assert describe_redis_error.__module__ == "roost.redis.faults"
    assert RedisBackend.__module__ == "roost.redis.plugin" and callable(build_engine)


LIGHT = """
import json, sys
import roost.redis.server
from roost.runtime import BadInput
from roost.runtime.log_choices import LOG_LEVELS
import roost_watchlist.plugin
print(json.dumps(sorted(sys.modules)))
"""


def test_light_submodules_stay_light() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LIGHT], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(done.stdout))
    assert {"roost.redis.server", "roost.runtime.errors", "roost_watchlist.plugin"} <= loaded
    heavy = {"redis", "pydantic", "pydantic_settings", "httpx", "roost.redis.swarm"}
    assert heavy & loaded == set()
