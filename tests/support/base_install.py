"""A pytest plugin that makes the packages a base install lacks unimportable.

``python -m pytest -p tests.support.base_install tests/unit`` runs the unit tier as on
``pip install -e . --group test``: no runtimes (llama_cpp, gpt4all), no numpy/gguf, no
langchain-community; importing one raises ``ModuleNotFoundError`` as if it were absent.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

#: Top-level packages that only the extras (or the dev group) install.
NOT_IN_A_BASE_INSTALL = (
    "numpy",
    "llama_cpp",
    "gpt4all",
    "gguf",
    "safetensors",
    "langchain_community",
    "langchain_classic",
    "chromadb",
    "pypdf",
    "bs4",
    "matplotlib",
)


class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] in NOT_IN_A_BASE_INSTALL:
            raise ModuleNotFoundError(f"No module named {fullname!r} (not in a base install)", name=fullname)
        return None


for _name in list(sys.modules):
    if _name.split(".")[0] in NOT_IN_A_BASE_INSTALL:
        del sys.modules[_name]
sys.meta_path.insert(0, _Absent())
