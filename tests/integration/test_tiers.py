"""The test tiers and the wheel: unit tests need only a base install; the wheel holds no test code."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_unit_tests_run_on_a_base_install() -> None:
    # The runtimes, numpy, gguf and langchain-community cannot be imported in this run.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.support.base_install",
            "tests/unit",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
    assert "skipped" not in done.stdout.splitlines()[-1]


def test_the_wheel_holds_the_package_and_no_test_code(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("langchain_localllm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "langchain_localllm/__init__.py" in names
    assert "langchain_localllm/ollama/client.py" in names
    assert any(name.endswith("/licenses/LICENSE") for name in names)
    code = [name for name in names if name.endswith(".py")]
    assert all(name.startswith("langchain_localllm/") for name in code), code
    assert not [name for name in code if "test" in name.split("/")[-1] or "/testing/" in name]
    sources = "\n".join(zipfile.ZipFile(wheel).read(name).decode() for name in code)
    for marker in ("OllamaTestServer", "FaultServer", "class LlamaServer:", "tests.support"):
        assert marker not in sources
