"""`localllm` run as a subprocess, as a user runs it, on generated GGUF models.

Each test gets an empty temporary HOME; the demo model is cached once for the
session under the test model cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.models import CACHE, tiny_model
from tests.support.llama_server import LlamaServer
from tests.support.ollama_server import OllamaTestServer

PROMPT = "The first man on the moon was"
_DISCOVERY_VARS = (
    "OLLAMA_HOST",
    "OLLAMA_MODELS",
    "HF_HOME",
    "HF_HUB_CACHE",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "LOCALLLM_MODELS",
    "LOCALLLM_CACHE_DIR",
)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def down_url() -> str:
    return f"http://127.0.0.1:{closed_port()}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def localllm(
    *args: str, home: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in _DISCOVERY_VARS}
    environ.update(
        HOME=str(home),
        LOCALLLM_MODEL_CACHE=str(CACHE / "cli-demo"),
        OLLAMA_HOST=f"127.0.0.1:{closed_port()}",
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "langchain_localllm.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
        env=environ,
        cwd=Path(__file__).parents[2],
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("localllm: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


# --- run -------------------------------------------------------------------------------


@pytest.mark.real_model
def test_run_without_a_model_streams_the_embedded_gemma(home: Path) -> None:
    """The [demo] extra is installed: the default is the real Gemma 3 270M, assembled into the
    model cache on first use and announced with what it is and its license."""
    result = localllm("run", "Paris is the capital of", "--max-tokens", "3", home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0].strip(",.") == "France"
    assert result.stdout.endswith("\n")
    for fragment in ("Gemma 3 270M", "tiny real base model", "often wrong", "Gemma Terms of Use", "--model"):
        assert fragment in result.stderr
    assert (CACHE / "cli-demo" / "gemma-3-270m-q4_k_m.gguf").is_file()
    listing = localllm("models", "--backend", "llamacpp", home=home)
    assert "gemma-3-270m" in listing.stdout
    assert "241.4 MB" in listing.stdout
    assert "license: Gemma Terms of Use" in listing.stdout


def test_gpt4all_without_a_model_streams_the_labelled_random_weight_model(home: Path) -> None:
    # gpt4all 2.8 cannot run Gemma 3: its default stays the generated model, labelled as such.
    result = localllm("run", PROMPT, "--backend", "gpt4all", "--max-tokens", "12", home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert result.stdout.endswith("\n")
    assert "built-in demo model" in result.stderr
    assert "random weights" in result.stderr
    assert (CACHE / "cli-demo" / "localllm-demo-small-llama2.gguf").is_file()


def test_run_streams_the_same_text_as_the_library_and_prints_timings(home: Path) -> None:
    from langchain_localllm import LlamaCpp

    model = tiny_model("llama2")
    options = ("--model", str(model), "--max-tokens", "10", "--temperature", "0", "--timings")
    result = localllm("run", PROMPT, *options, home=home)
    assert result.returncode == 0, result.stderr
    expected = LlamaCpp(model_path=str(model), max_tokens=10, temperature=0, verbose=False).invoke(PROMPT)
    assert result.stdout == expected + "\n"
    timing_lines = [line for line in result.stderr.splitlines() if line.startswith("localllm_perf:")]
    labels = [line.split("=")[0].split(":", 1)[1].strip() for line in timing_lines]
    assert labels == ["time to first token", "prompt eval time", "eval time", "total time"]
    ttft = float(re.search(r"= +([\d.]+) ms", timing_lines[0]).group(1))  # type: ignore[union-attr]
    total = float(re.search(r"= +([\d.]+) ms", timing_lines[3]).group(1))  # type: ignore[union-attr]
    assert 0 < ttft <= total
    assert re.search(r"[1-9][\d.]* tokens per second", timing_lines[2])


def test_run_reads_the_prompt_from_stdin_and_runs_gpt4all(home: Path) -> None:
    model = tiny_model("llama2")
    args = ("run", "-", "--backend", "gpt4all", "--model", str(model), "--max-tokens", "6")
    result = localllm(*args, home=home, stdin=PROMPT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_run_finds_a_model_by_name_in_the_usual_folders(home: Path) -> None:
    target = home / ".cache" / "gpt4all" / "my-tiny-model.gguf"
    target.parent.mkdir(parents=True)
    shutil.copy(tiny_model("llama2"), target)
    result = localllm("run", PROMPT, "--model", "my-tiny-model", "--max-tokens", "4", home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "demo model" not in result.stderr


def test_missing_model_is_a_one_line_error(home: Path) -> None:
    result = localllm("run", PROMPT, "--model", "/no/such/model.gguf", home=home)
    assert_one_line_error(result, "'/no/such/model.gguf' not found", "localllm models")


def test_a_file_that_is_not_a_model_is_a_one_line_error(home: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("these are notes, not a model")
    result = localllm("run", PROMPT, "--model", str(bogus), home=home)
    assert_one_line_error(result, "notes.gguf")


def test_unknown_backend_is_a_usage_error(home: Path) -> None:
    result = localllm("run", PROMPT, "--backend", "vllm", home=home)
    assert result.returncode == 2
    assert "invalid choice: 'vllm'" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_that_is_down_is_a_one_line_error(home: Path, down_url: str) -> None:
    result = localllm("run", PROMPT, "--backend", "llamafile", "--base-url", down_url, home=home)
    assert_one_line_error(result, down_url, "start it")


def test_pull_from_an_ollama_that_is_down_is_a_one_line_error(home: Path, down_url: str) -> None:
    result = localllm("pull", "llama3.2", "--base-url", down_url, home=home)
    assert_one_line_error(result, down_url, "ollama serve")


# --- chat ------------------------------------------------------------------------------


def test_chat_keeps_the_history_and_ends_on_exit(home: Path) -> None:
    model = tiny_model("llama2")
    stdin = "Hello there\n\nWhat did I just say?\n/exit\nnever sent\n"
    args = ("chat", "--model", str(model), "--max-tokens", "5", "--seed", "1", "--timings")
    result = localllm(*args, home=home, stdin=stdin)
    assert result.returncode == 0, result.stderr
    answers = result.stdout.splitlines()
    assert len(answers) == 2
    assert all(answer.strip() for answer in answers)
    assert "2 calls" in result.stderr
    # The second prompt holds the first exchange: it is much longer than the first.
    prompt_line = next(line for line in result.stderr.splitlines() if "prompt eval time" in line)
    prompt_tokens = int(re.search(r"/ +(\d+) tokens", prompt_line).group(1))  # type: ignore[union-attr]
    from langchain_localllm import LlamaCpp

    llm = LlamaCpp(model_path=str(model), verbose=False)
    first = llm.get_num_tokens("[INST] Hello there [/INST]")
    assert prompt_tokens > 2 * first


def test_chat_ends_on_end_of_input(home: Path) -> None:
    model = tiny_model("chatml")
    result = localllm("chat", "--model", str(model), "--max-tokens", "3", home=home, stdin="Hi\n")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1


# --- models ----------------------------------------------------------------------------


def test_models_lists_gguf_files_from_a_temporary_home(home: Path, tmp_path: Path, down_url: str) -> None:
    model = tiny_model("llama2")
    store = home / ".ollama" / "models"
    (store / "blobs").mkdir(parents=True)
    shutil.copy(model, store / "blobs" / "sha256-1234abcd")
    manifest = store / "manifests" / "example.invalid" / "library" / "tinyllama" / "latest"
    manifest.parent.mkdir(parents=True)
    layers = [{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:1234abcd"}]
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": layers}))
    for folder in (
        home / ".cache" / "gpt4all",
        home / ".cache" / "huggingface" / "hub" / "models--org--repo" / "snapshots" / "abc",
        home / ".lmstudio" / "models" / "pub" / "repo",
        tmp_path / "extra",
    ):
        folder.mkdir(parents=True)
        shutil.copy(model, folder / f"in-{folder.parts[-1]}.gguf")

    result = localllm(
        "models", "--base-url", down_url, home=home, env={"LOCALLLM_MODELS": str(tmp_path / "extra")}
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Ollama at {down_url}: not running" in out
    for name, source in (
        ("tinyllama:latest", "ollama"),
        ("in-gpt4all.gguf", "gpt4all"),
        ("org/repo/in-abc.gguf", "huggingface"),
        ("pub/repo/in-repo.gguf", "lmstudio"),
        ("in-extra.gguf", "LOCALLLM_MODELS"),
    ):
        assert re.search(rf"^  {re.escape(name)} +{source} ", out, re.MULTILINE), out
    assert "GGUF files (5;" in out

    ran = localllm("run", PROMPT, "--model", "tinyllama", "--max-tokens", "3", home=home)
    assert ran.returncode == 0, ran.stderr


def test_models_says_clearly_when_nothing_is_there(home: Path) -> None:
    result = localllm("models", home=home)
    assert result.returncode == 0, result.stderr
    assert "not running" in result.stdout
    assert "No GGUF files found" in result.stdout
    assert "LOCALLLM_MODELS" in result.stdout


# --- chains ----------------------------------------------------------------------------


def test_search_queries_prints_at_most_n_queries(home: Path) -> None:
    model = tiny_model("llama2")
    args = ("search-queries", "Who was the first man on the moon?", "--model", str(model), "-n", "2")
    result = localllm(*args, "--max-tokens", "30", "--seed", "2", home=home)
    assert result.returncode == 0, result.stderr
    queries = result.stdout.splitlines()
    assert len(queries) <= 2
    assert all(q.strip() for q in queries)
    assert result.stderr.strip()  # the model's raw text streamed on stderr


def test_summarize_a_file(home: Path, tmp_path: Path) -> None:
    text = tmp_path / "moon.txt"
    text.write_text("Neil Armstrong walked on the moon in 1969. " * 20)
    args = ("summarize", str(text), "--model", str(tiny_model("llama2")), "--max-tokens", "12")
    result = localllm(*args, home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_summarize_a_missing_file_is_a_one_line_error(home: Path) -> None:
    result = localllm("summarize", "/no/such/file.txt", home=home)
    assert_one_line_error(result, "/no/such/file.txt")


# --- rag -------------------------------------------------------------------------------


def test_rag_index_then_ask_with_sources(home: Path, tmp_path: Path, minilm_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "moon.txt").write_text("Neil Armstrong was the first man to walk on the moon, in July 1969.")
    (docs / "paris.md").write_text("# Paris\n\nThe Eiffel Tower is a wrought-iron tower in Paris.")
    index = tmp_path / "index"
    common = ("--embeddings-model", str(minilm_path), "--index", str(index))
    indexed = localllm("rag", "index", str(docs), *common, home=home)
    assert indexed.returncode == 0, indexed.stderr
    assert "2 added" in indexed.stderr

    question = "Who was the first man on the moon?"
    args = ("rag", "ask", question, *common, "-k", "1", "--model", str(tiny_model("llama2")))
    asked = localllm(*args, "--max-tokens", "8", home=home)
    assert asked.returncode == 0, asked.stderr
    answer, sources = asked.stdout.split("\nSources:\n")
    assert answer.strip()
    assert sources.strip() == str(docs / "moon.txt")  # the real MiniLM retrieves the right file


def test_rag_index_leaves_links_out_unless_asked_and_says_so(
    home: Path, tmp_path: Path, minilm_path: Path
) -> None:
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "secret.txt").write_text("The launch code is 0000.")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "moon.txt").write_text("Neil Armstrong walked on the moon in 1969.")
    (docs / "out.txt").symlink_to("../secret/secret.txt")
    (docs / "paris.md").write_text("The Eiffel Tower is in Paris.")
    common = ("--embeddings-model", str(minilm_path), "--index", str(tmp_path / "index"))
    result = localllm("rag", "index", str(docs), *common, home=home)
    assert result.returncode == 0, result.stderr
    assert "2 added" in result.stderr and "1 skipped" in result.stderr
    [warning] = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert "out.txt is a symbolic link to" in warning and "--follow-symlinks" in warning
    followed = localllm("rag", "index", str(docs), *common, "--follow-symlinks", home=home)
    assert followed.returncode == 0, followed.stderr
    assert "1 added" in followed.stderr and "0 skipped" in followed.stderr
    small = localllm("rag", "index", str(docs), *common, "--max-file-size", "0.00003", home=home)
    assert "1 removed" in small.stderr and "2 skipped" in small.stderr
    assert "moon.txt is 42 bytes, above the limit of 31 bytes" in small.stderr


def test_rag_ask_without_an_index_says_how_to_build_one(home: Path, tmp_path: Path) -> None:
    result = localllm("rag", "ask", "Who?", "--index", str(tmp_path / "none"), home=home)
    assert_one_line_error(result, "localllm rag index DIR")


# --- Ollama (the project's Ollama API test server) ------------------------------------


@pytest.fixture(scope="module")
def ollama() -> Iterator[OllamaTestServer]:
    """A server of our own: `pull` changes what it holds."""
    server = OllamaTestServer(
        {"tiny": tiny_model("llama2")}, pullable={"tiny-pullable": tiny_model("chatml")}, n_ctx=512
    )
    with server:
        yield server


def test_run_on_ollama_with_timings(home: Path, ollama: OllamaTestServer) -> None:
    args = ("run", PROMPT, "--backend", "ollama", "--model", "tiny", "--base-url", ollama.base_url)
    result = localllm(*args, "--max-tokens", "6", "--temperature", "0", "--timings", home=home)
    assert result.returncode == 0, result.stderr
    from langchain_localllm import Ollama

    expected = Ollama(model="tiny", base_url=ollama.base_url, num_predict=6, temperature=0).invoke(PROMPT)
    assert result.stdout == expected + "\n"
    assert re.search(r"eval time = +[\d.]+ ms / +6 runs", result.stderr), result.stderr


def test_ollama_from_ollama_host(home: Path, ollama: OllamaTestServer) -> None:
    host = ollama.base_url.removeprefix("http://")
    args = ("run", "Hi", "--backend", "ollama", "--model", "tiny", "--max-tokens", "3")
    result = localllm(*args, home=home, env={"OLLAMA_HOST": host})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_chat_on_ollama_sends_the_conversation_as_messages(home: Path, ollama: OllamaTestServer) -> None:
    args = ("chat", "--backend", "ollama", "--model", "tiny", "--base-url", ollama.base_url)
    before = len(ollama.requests)
    stdin = "Hello\n/system Be brief.\nAgain\n"
    result = localllm(*args, "--max-tokens", "4", home=home, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    chats = [body for _, path, body in ollama.requests[before:] if path == "/api/chat"]
    assert len(chats) == 2
    assert chats[0]["messages"] == [{"role": "user", "content": "Hello"}]
    first_answer = result.stdout.splitlines()[0]
    assert chats[1]["messages"] == [
        {"role": "system", "content": "Be brief."},  # /system applies to the rest of the conversation
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": first_answer},  # the history is sent again
        {"role": "user", "content": "Again"},
    ]


def test_models_lists_a_running_ollama(home: Path, ollama: OllamaTestServer) -> None:
    result = localllm("models", "--base-url", ollama.base_url, home=home)
    assert result.returncode == 0, result.stderr
    assert f"Ollama at {ollama.base_url} (" in result.stdout
    assert re.search(r"^  tiny:latest\t", result.stdout, re.MULTILINE)


def test_models_for_one_backend(home: Path, ollama: OllamaTestServer) -> None:
    only_ollama = localllm("models", "--backend", "ollama", "--base-url", ollama.base_url, home=home)
    assert only_ollama.returncode == 0, only_ollama.stderr
    assert "tiny:latest" in only_ollama.stdout
    assert "GGUF" not in only_ollama.stdout
    only_files = localllm("models", "--backend", "llamacpp", "--base-url", ollama.base_url, home=home)
    assert only_files.returncode == 0, only_files.stderr
    assert "Ollama" not in only_files.stdout
    assert "No GGUF files found" in only_files.stdout


def test_pull_is_for_ollama_only(home: Path) -> None:
    result = localllm("pull", "llama3.2", "--backend", "gpt4all", home=home)
    assert_one_line_error(result, "pull downloads into Ollama")


def test_pull_into_ollama(home: Path, ollama: OllamaTestServer) -> None:
    result = localllm("pull", "tiny-pullable", "--base-url", ollama.base_url, home=home)
    assert result.returncode == 0, result.stderr
    assert "100%" in result.stderr
    assert "pulled tiny-pullable" in result.stderr
    listed = localllm("models", "--base-url", ollama.base_url, home=home)
    assert "tiny-pullable:latest" in listed.stdout


def test_pull_of_an_unknown_model_is_a_one_line_error(home: Path, ollama: OllamaTestServer) -> None:
    result = localllm("pull", "no-such-model", "--base-url", ollama.base_url, home=home)
    assert_one_line_error(result, "no-such-model")


def test_ollama_model_that_the_server_lacks(home: Path, ollama: OllamaTestServer) -> None:
    args = ("run", "Hi", "--backend", "ollama", "--model", "missing", "--base-url", ollama.base_url)
    result = localllm(*args, home=home)
    assert_one_line_error(result, "missing")


def test_ollama_that_is_down_is_a_one_line_error(home: Path, down_url: str) -> None:
    args = ("run", "Hi", "--backend", "ollama", "--model", "tiny", "--base-url", down_url)
    result = localllm(*args, home=home)
    assert_one_line_error(result, down_url, "ollama serve")


# --- llamafile / llama-server (the real binary) ---------------------------------------


@pytest.mark.llama_server
def test_run_and_chat_on_llama_server(home: Path, llama_server: LlamaServer) -> None:
    common = ("--backend", "llamafile", "--base-url", llama_server.base_url, "--max-tokens", "6")
    ran = localllm("run", PROMPT, *common, "--timings", home=home)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip()
    assert re.search(r"eval time = +[\d.]+ ms / +\d+ runs", ran.stderr), ran.stderr
    chatted = localllm("chat", *common, home=home, stdin="Hello\nAgain\n")
    assert chatted.returncode == 0, chatted.stderr
    assert len(chatted.stdout.splitlines()) == 2
    listed = localllm("models", "--backend", "llamafile", "--base-url", llama_server.base_url, home=home)
    assert listed.returncode == 0, listed.stderr
    assert "serves:" in listed.stdout
    assert "tiny-chatml.gguf" in listed.stdout


def test_chat_on_ollama_runs_on_a_base_install(home: Path, ollama: OllamaTestServer) -> None:
    # Regression: the CLI imported the test servers, so `localllm chat --backend ollama` on a
    # base install failed with ModuleNotFoundError: numpy.
    script = (
        "import sys\n"
        "import tests.support.base_install  # numpy, the runtimes, gguf... cannot be imported\n"
        "from langchain_localllm.cli.main import main\n"
        "status = main(sys.argv[1:])\n"
        "allowed = {'tests', 'tests.support', 'tests.support.base_install'}\n"
        "test_code = sorted(m for m in sys.modules if m.split('.')[0] == 'tests' and m not in allowed)\n"
        "sys.exit(f'the CLI imported test code: {test_code}' if test_code else status)\n"
    )
    args = (
        "chat",
        "--backend",
        "ollama",
        "--model",
        "tiny",
        "--base-url",
        ollama.base_url,
        "--max-tokens",
        "3",
    )
    environ = {k: v for k, v in os.environ.items() if k not in _DISCOVERY_VARS}
    environ.update(HOME=str(home), PYTHONPATH=str(Path(__file__).parents[2]))
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        input="Hello\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
        cwd=home,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
