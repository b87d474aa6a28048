"""Lazy package exports, written once: the ``if TYPE_CHECKING:`` imports are the list.

Keeps ``import langchain_localllm`` (and its subpackages) light: the runtimes, numpy and
the loaders are imported only when a class or function that needs them is touched.

A package lists its public names once, as imports under ``if TYPE_CHECKING:`` (so type
checkers and editors see the real classes), and ends with::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, globals())

:func:`lazy_exports` reads those imports from the package's own source (a parse of one
short file, once per package) and turns them into the module-level ``__getattr__`` that
imports a name's module on first access, and into ``__all__``.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any


def type_checking_imports(source: str) -> dict[str, str]:
    """Public name -> defining module, for every ``from M import N`` under ``if TYPE_CHECKING:``."""
    exports: dict[str, str] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.If) and _is_type_checking(node.test)):
            continue
        for statement in node.body:
            if isinstance(statement, ast.ImportFrom) and statement.module and statement.level == 0:
                for alias in statement.names:
                    exports[alias.asname or alias.name] = statement.module
    return exports


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def lazy_exports(
    package: str, namespace: dict[str, Any], *, extra: tuple[str, ...] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``.

    The exports are the package's ``if TYPE_CHECKING:`` imports; ``extra`` names are
    defined in the package itself (``__version__``) and join ``__all__``. A value is cached
    in ``namespace`` (the package's ``globals()``) on first access.
    """
    exports = type_checking_imports(Path(namespace["__file__"]).read_text(encoding="utf-8"))
    if not exports:
        raise RuntimeError(f"{package}: no `if TYPE_CHECKING:` imports to export")
    public = sorted([*exports, *extra])

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return list(public)

    return __getattr__, __dir__, public
