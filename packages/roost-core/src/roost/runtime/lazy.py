"""Package names imported on first use (a module ``__getattr__``, PEP 562).

A package that re-exports names from its submodules imports them all when it is imported,
so ``from roost.runtime import BadInput`` would load pydantic's models and settings too.
:func:`lazy_exports` makes the pair of module functions that import a name's module only
when the name is first read, then keep the name in the package. Plugins may use it too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, sources: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, which exports the names of ``sources``.

    ``sources`` maps each exported name to the module that defines it: ``"pkg.mod"`` when
    it has the same name there, ``"pkg.mod:other"`` when it has another. Use as::

        __getattr__, __dir__ = lazy_exports(__name__, {"BadInput": "roost.runtime.errors"})
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook's own name
        """Import the module that defines ``name`` on first use, and keep the name."""
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = source.partition(":")
        value = getattr(import_module(module), attribute or name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the module hook's own name
        """The names defined in the package and the ones not imported yet."""
        return sorted({*vars(sys.modules[package]), *sources})

    return __getattr__, __dir__
