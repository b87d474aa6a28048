"""The package's layers import downward only, and no module imports another's private names.

Layers, lowest first: ``errors``; ``_core``; ``prompts``; ``_inprocess``; the runtimes; the
applications (chains, rag, callbacks, cli, demo_models). A module may import its own layer and
those below it (imports inside functions count too: a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "langchain_localllm"
RUNTIMES = {"llamacpp", "gpt4all", "ollama", "llamafile", "openai_compatible"}
APPLICATIONS = {"chains", "rag", "callbacks", "cli", "demo_models"}


def layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top in ("", "errors"):
        return 0
    if top == "_core":
        return 1
    if top == "prompts":
        return 2
    if top == "_inprocess":
        return 3
    if top in RUNTIMES:
        return 4
    assert top in APPLICATIONS, f"{module}: a folder the layers do not place; add it to this test"
    return 5


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("langchain_localllm"):
            found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [
                (a.name, [], node.lineno) for a in node.names if a.name.startswith("langchain_localllm")
            ]
    return found


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        dotted = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found.append((dotted.removesuffix(".__init__"), path))
    return found


def test_every_import_points_down() -> None:
    upward = [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)}) at line {line}"
        for module, path in modules()
        for target, _, line in imports(path)
        if layer(target) > layer(module) and module != "langchain_localllm"
    ]
    assert upward == []


def test_no_module_imports_the_private_names_of_another() -> None:
    private = [
        f"{module} imports {name} from {target} at line {line}"
        for module, path in modules()
        for target, names, line in imports(path)
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert private == []
