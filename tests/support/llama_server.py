"""Start and stop llama.cpp's ``llama-server`` (what llamafile 0.10+ runs) on a loopback port.

The binary is built from the llama.cpp sources vendored in llama-cpp-python's sdist, in the same
compile as the llama-cpp-python wheel, by ``scripts/build_llama_cpp.sh``, and cached in
``~/.cache/langchain-localllm/llama-cpp-<version>/build/bin/llama-server``;
``LLAMA_SERVER_BIN`` overrides the path.

>>> from langchain_localllm.demo_models import write_tiny_model
>>> from tests.support.llama_server import LlamaServer
>>> with LlamaServer(write_tiny_model("/tmp/tiny.gguf")) as server:  # doctest: +SKIP
...     print(server.base_url)
http://127.0.0.1:39451

Embeddings: ``LlamaServer(path, extra_args=["--embeddings", "--pooling", "mean"])``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from langchain_localllm._core.paths import cache_dir

__all__ = ["LlamaServer", "LlamaServerError", "find_llama_server", "free_port"]

CACHE_DIR = cache_dir()


class LlamaServerError(RuntimeError):
    """The llama-server binary is missing, or the server did not start (the log is in the message)."""


def find_llama_server() -> Path | None:
    """The llama-server binary: ``$LLAMA_SERVER_BIN``, else the newest one the build script cached."""
    env = os.environ.get("LLAMA_SERVER_BIN")
    if env:
        return Path(env) if Path(env).is_file() else None
    candidates = sorted(CACHE_DIR.glob("llama-cpp-*/build/bin/llama-server"), key=lambda p: p.stat().st_mtime)
    return candidates[-1] if candidates else None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """A ``llama-server`` subprocess serving one GGUF model on ``127.0.0.1``.

    Args:
        model_path: The GGUF file to serve.
        binary: The llama-server executable (default: :func:`find_llama_server`).
        port: The port (default: a free one).
        n_ctx: Context size per slot (``-c``).
        threads: CPU threads (``-t``); None lets the server decide.
        parallel: Slots (``-np``): how many requests are served at once.
        extra_args: More command-line arguments, e.g. ``["--embeddings", "--pooling", "mean"]``.
        startup_timeout: Seconds to wait for ``/health`` to answer 200.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        binary: str | os.PathLike[str] | None = None,
        port: int | None = None,
        n_ctx: int = 2048,
        threads: int | None = None,
        parallel: int = 1,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
    ) -> None:
        found = Path(binary) if binary is not None else find_llama_server()
        if found is None or not found.is_file():
            where = found or f"no LLAMA_SERVER_BIN, nothing in {CACHE_DIR}"
            msg = (
                f"llama-server binary not found ({where}). "
                "Build it with `bash scripts/build_llama_cpp.sh` or set LLAMA_SERVER_BIN."
            )
            raise LlamaServerError(msg)
        self.binary = found
        self.model_path = Path(model_path)
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.n_ctx = n_ctx
        self.threads = threads
        self.parallel = parallel
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)  # noqa: SIM115
        self.log_path = Path(self._log.name)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        """The command line the server runs with."""
        cmd = [str(self.binary), "-m", str(self.model_path), "--host", self.host, "--port", str(self.port)]
        cmd += ["-c", str(self.n_ctx), "-np", str(self.parallel)]
        if self.threads is not None:
            cmd += ["-t", str(self.threads)]
        return cmd + self.extra_args

    def start(self) -> LlamaServer:
        """Start the process and wait until ``/health`` answers 200."""
        self.process = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LlamaServerError(
                    f"llama-server exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self._healthy():
                return self
            time.sleep(0.05)  # polling an external process's readiness
        self.stop()
        raise LlamaServerError(f"llama-server not ready after {self.startup_timeout} s:\n{self.log_tail()}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/health", timeout=2) as response:
                return response.status == 200 and json.loads(response.read()).get("status") == "ok"
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log."""
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
