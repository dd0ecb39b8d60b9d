"""PEP 562 lazy re-exports: a package names its public API without importing it.

``stayfresh token NAME`` runs once per request in scripts; importing every
subpackage (HTTP clients, the work engine, rich) to print one token would
cost more than the command itself. A package lists where each name lives,
keeps the real imports under ``TYPE_CHECKING`` for type checkers, and loads a
submodule the first time one of its names is read.
"""

from __future__ import annotations

import importlib

#: ``typing`` costs ~10 ms to import: the valid-token path imports it only for type checkers
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


def lazy_exports(
    package: str, where: Mapping[str, str], *, module: str | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose ``where`` maps name -> submodule.

    ``module``: a plain module of the package exporting lazily too (``tokens.internal``);
    the submodules are still named relative to ``package``. A name read once is
    stored in the exporting module's namespace, so later reads cost a dictionary
    lookup and :func:`vars` shows it like an eager import.
    """
    home = module or package

    def __getattr__(name: str) -> Any:
        if module is None and name not in where and not name.startswith("__"):
            # a submodule (``notify._when``) is an attribute once imported, as with eager imports
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{name}":
                    raise
        if name not in where:
            raise AttributeError(f"module {home!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        vars(importlib.import_module(home))[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(home))) | set(where))

    return __getattr__, __dir__
