"""The gpt4all folder depends one way: on its own runtime module and the shared core, never on
llama.cpp (the vocabulary is read from the GGUF file), never on another module's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import langchain_localllm.gpt4all

FOLDER = Path(langchain_localllm.gpt4all.__file__).parent


def imports(path: Path) -> list[tuple[str, str]]:
    """``(module, name)`` of every import in the file (name "" for ``import module``)."""
    found: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
    return found


def test_nothing_under_gpt4all_imports_llama_cpp() -> None:
    modules = sorted(FOLDER.glob("*.py"))
    assert len(modules) >= 6
    for path in modules:
        for module, _ in imports(path):
            assert not module.startswith(("llama_cpp", "langchain_localllm.llamacpp")), (path.name, module)


def test_no_gpt4all_module_imports_private_names_of_another() -> None:
    for path in sorted(FOLDER.glob("*.py")):
        private = [
            (m, n) for m, n in imports(path) if n.startswith("_") and m.startswith("langchain_localllm")
        ]
        assert private == [], path.name
