"""A local server that speaks the Ollama HTTP API, generating real tokens from GGUF files.

For tests, notebooks and demos on machines where Ollama itself cannot be installed. The
wire format follows Ollama's API documentation: NDJSON streams
(``application/x-ndjson``), the final chunk's ``done_reason``, ``context`` and integer
nanosecond durations, 404 ``{"error": "model 'x' not found"}``, errors after the stream
began as a last line ``{"error": ...}`` with status 200, ``/api/tags``, ``/api/show``
(``template``: the model's chat template, ``parameters``, ``details.family``, ``model_info``),
``/api/chat`` (``message.content`` deltas; with ``think``, ``<think>`` text in ``message.thinking``;
with ``tools``, calls in ``message.tool_calls``),
``/api/pull`` progress (``status``/``digest``/``total``/``completed``), ``/api/version``,
``/api/embed`` (list input, L2-normalised ``embeddings``) and the legacy
``/api/embeddings`` (``{"embedding": [...]}``).

A model may be served with a real chat template (``template=``, as a Modelfile's ``TEMPLATE``
does): prompts are then rendered by it, and when it renders tools the model "supports tools"
(``capabilities`` lists ``tools``) -- the tools go into the prompt through the template and
the model's output is parsed in the template's own tool-call syntax, as Ollama's parser does:
text before a call streams as ``content``, each complete call comes as one chunk with
``message.tool_calls``, and a call that does not parse stays text. Sending ``tools`` to a
model whose template does not render them is Ollama's 400 "does not support tools".

Generation runs the GGUF through llama-cpp-python (``create_completion``), so the tokens,
counts and timings are real; ``format`` ("json" or a schema) becomes a llama.cpp grammar.
Prompts are laid out by the package's chat-format registry (the format whose template the
GGUF carries) unless ``raw`` is true; a ``template`` sent with a request is rendered as a Go
template (the subset ``{{ .System }}``, ``{{ .Prompt }}``, ``{{ .Response }}`` and
``{{ if .X }}...{{ end }}``).

Embeddings come from llama-cpp-python's ``embed`` on the same GGUF loaded with
``embedding=True`` (mean-pooled over tokens when the model has no pooling of its own, then
L2-normalised for ``/api/embed``): real, deterministic vectors, though a random-weight
test model's vectors carry no meaning. Only if llama.cpp cannot embed with the model does the
server fall back to a deterministic hash-seeded vector (``embedding_source`` tells which).

In-process (a background thread)::

    from tests.support.ollama_server import OllamaTestServer
    with OllamaTestServer({"tiny": "/tmp/tiny.gguf"}) as server:
        print(server.base_url)

From a shell::

    python -m tests.support.ollama_server --model /tmp/tiny.gguf --name tiny --port 11434
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from langchain_localllm._core.base.chat import ReasoningSplitter
from langchain_localllm._core.gguf.reader import read_gguf
from langchain_localllm._inprocess.constrained import tool_plan
from langchain_localllm.prompts import FORMATS, ChatFormat, ChatTemplateError
from langchain_localllm.prompts.chat_template import render_chat_template
from langchain_localllm.prompts.tool_calls import ToolCallParser, ToolCallSyntax

__all__ = ["OllamaTestServer", "main", "render_go_template"]

VERSION = "0.9.0"
"""What ``/api/version`` reports."""

_IF_BLOCK = re.compile(r"\{\{-?\s*if\s+\.(\w+)\s*-?\}\}(.*?)\{\{-?\s*end\s*-?\}\}", re.DOTALL)
_VARIABLE = re.compile(r"\{\{-?\s*\.(\w+)\s*-?\}\}")
_MAX_BODY = 64 * 1024 * 1024


def render_go_template(template: str, values: Mapping[str, str]) -> str:
    """Render the subset of Go templates Ollama's simple model templates use."""
    text = _IF_BLOCK.sub(lambda m: m.group(2) if values.get(m.group(1)) else "", template)
    return _VARIABLE.sub(lambda m: values.get(m.group(1), ""), text)


def normalise_name(name: str) -> str:
    """``name`` with Ollama's default ``:latest`` tag."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Model:
    name: str
    path: Path
    chat_format: str | None
    metadata: dict[str, Any]
    digest: str
    llm: Any = None
    embedder: Any = None
    embedding_source: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    modified_at: str = field(default_factory=_now)
    chat_template: str | None = None
    """A real chat template the model is served with (a Modelfile's ``TEMPLATE``), or None."""
    stop_parameters: tuple[str, ...] | None = None
    """Stop strings it was added with (a Modelfile's ``PARAMETER stop``), or None."""

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture") or "llama")

    @property
    def context_length(self) -> int:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if isinstance(value, int) else 2048

    @property
    def format(self) -> ChatFormat | None:
        return FORMATS.get(self.chat_format) if self.chat_format else None

    @property
    def template(self) -> str:
        """The model's template as /api/show reports it: the one it is served with, the
        registry's (Jinja) template of its format, or Ollama's default ``{{ .Prompt }}``."""
        if self.chat_template is not None:
            return self.chat_template
        return self.format.template if self.format is not None else "{{ .Prompt }}"

    @property
    def stop(self) -> tuple[str, ...]:
        """The model's ``stop`` parameters (a Modelfile's): the ones it was added with, else
        its registry format's end-of-turn strings."""
        if self.stop_parameters is not None:
            return self.stop_parameters
        return self.format.stop if self.format is not None else ()

    @property
    def tool_syntax(self) -> ToolCallSyntax | None:
        """The syntax the model's calls are parsed in: its template's, when the template
        renders tools (the model "supports tools"); None otherwise. The package's own probe
        (``tool_plan``, cached per template) decides."""
        if self.chat_template is None:
            return None
        plan = tool_plan(self.chat_template, render_chat_template)
        return plan.syntax if plan.native else None

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
        """The prompt for ``messages`` (Ollama's chat: the template over the conversation)."""
        if self.chat_template is not None:
            return render_chat_template(self.chat_template, messages, tools=tools, bos_token="", eos_token="")
        if self.format is None:
            return "\n\n".join(str(m.get("content") or "") for m in messages)
        return self.format.render_messages(messages, add_generation_prompt=True)


def _chat_format_of(chat_template: str | None) -> str | None:
    for name, fmt in FORMATS.items():
        if chat_template == fmt.template:
            return name
    return None


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return "sha256:" + sha.hexdigest()


@dataclass
class _InjectedError:
    after_tokens: int
    message: str


class OllamaTestServer:
    """Serve GGUF models with Ollama's API on ``127.0.0.1`` from a background thread.

    Args:
        models: Model name (``name[:tag]``) -> GGUF path, available at once.
        pullable: Names ``/api/pull`` can "download" (-> GGUF path); pulling adds them.
        port: TCP port (0: a free one).
        n_ctx: Context size the models run with when a request sets no ``num_ctx``.
        n_threads: CPU threads llama.cpp uses (1 keeps tests fast on busy machines: spinning
            worker threads slow down badly when cores are shared).
    """

    def __init__(
        self,
        models: Mapping[str, str | os.PathLike[str]] | None = None,
        *,
        pullable: Mapping[str, str | os.PathLike[str]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        n_ctx: int = 2048,
        n_threads: int = 1,
    ) -> None:
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.models: dict[str, _Model] = {}
        self.pullable = {normalise_name(k): Path(v) for k, v in (pullable or {}).items()}
        self.requests: list[tuple[str, str, Any]] = []
        """``(method, path, decoded JSON body)`` of every request, for assertions."""
        self.generations: list[tuple[str, int, bool]] = []
        """``(model, tokens generated, whether the answer was sent to its end)`` of each
        generation, recorded when it ends (a client that stops reading ends it early)."""
        self.omit_final_fields: set[str] = set()
        """Fields to leave out of final chunks (Ollama marks them all ``omitempty``)."""
        self.modelfile_num_ctx = True
        """Whether ``/api/show`` lists ``num_ctx`` among the parameters (a Modelfile's
        ``PARAMETER num_ctx``); models pulled from Ollama's library have none."""
        self._inject: _InjectedError | None = None
        self._guard = threading.Lock()
        for name, path in (models or {}).items():
            self.add_model(name, path)
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host = self._httpd.server_address[0]
        return f"http://{host if isinstance(host, str) else host.decode()}:{self.port}"

    def add_model(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        template: str | None = None,
        stop: tuple[str, ...] | None = None,
    ) -> None:
        """Make a GGUF file available under ``name``, as a Modelfile would: ``template``, a
        real chat template to serve it with instead of the file's own (``TEMPLATE``);
        ``stop``, its stop strings (``PARAMETER stop``; default: its format's end of turn)."""
        info = read_gguf(path)
        model = _Model(
            name=normalise_name(name),
            path=Path(path),
            chat_format=_chat_format_of(info.chat_template),
            metadata=dict(info.metadata),
            digest=_file_digest(Path(path)),
            chat_template=template,
            stop_parameters=stop,
        )
        with self._guard:
            self.models[model.name] = model

    def inject_error(self, after_tokens: int, message: str = "llama runner process has terminated") -> None:
        """Make the next streamed generate send ``{"error": message}`` after ``after_tokens`` tokens
        (as Ollama does when its runner dies mid-answer)."""
        self._inject = _InjectedError(after_tokens, message)

    def _take_injected(self) -> _InjectedError | None:
        with self._guard:
            inject, self._inject = self._inject, None
        return inject

    def model(self, name: str) -> _Model | None:
        """The model registered as ``name`` (``:latest`` implied)."""
        with self._guard:
            return self.models.get(normalise_name(name))

    def load(self, model: _Model) -> Any:
        """The model's llama-cpp-python instance (loaded on first use)."""
        if model.llm is None:
            from llama_cpp import Llama

            model.llm = Llama(
                model_path=str(model.path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False
            )
        return model.llm

    def embedder(self, model: _Model) -> Any:
        """The model loaded for embeddings, or None when llama.cpp cannot embed with it."""
        if model.embedder is None and not model.embedding_source:
            from llama_cpp import Llama

            try:
                model.embedder = Llama(
                    model_path=str(model.path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    embedding=True,
                    verbose=False,
                )
                model.embedding_source = "llama.cpp"
            except Exception:  # a model llama.cpp cannot embed with
                model.embedding_source = "hash-fallback"
        return model.embedder

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> OllamaTestServer:
        """Serve from a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True, name="ollama-test")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (until interrupted)."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> OllamaTestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _not_found(name: str) -> _HTTPError:
    return _HTTPError(404, f"model '{name}' not found")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-test"

    @property
    def owner(self) -> OllamaTestServer:
        return self.server.owner  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet

    # --- plumbing -------------------------------------------------------------------

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise _HTTPError(413, "request body too large")
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError as error:
            raise _HTTPError(400, f"invalid character in request body: {error}") from error

    def _send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_text(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _send_line(self, payload: Any) -> None:
        data = json.dumps(payload).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _stream(self, lines: Iterator[dict[str, Any]]) -> None:
        self._start_stream()
        try:
            for line in lines:
                self._send_line(line)
        except _HTTPError as error:  # after the stream began: a last error line, status 200
            self._send_line({"error": error.message})
        self._end_stream()

    def _dispatch(self, routes: Mapping[str, Any]) -> None:
        path = self.path.split("?", 1)[0]
        route = routes.get(path)
        if route is None:
            self._send_text(404, "404 page not found")
            return
        try:
            body = self._body() if self.command == "POST" else {}
            self.owner.requests.append((self.command, path, body))
            route(body)
        except _HTTPError as error:
            self._send_json(error.status, {"error": error.message})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch(
            {"/": self._root, "/api/version": self._version, "/api/tags": self._tags, "/api/ps": self._ps}
        )

    def do_HEAD(self) -> None:
        self._dispatch({"/": self._root})

    def do_POST(self) -> None:
        self._dispatch(
            {
                "/api/generate": self._generate,
                "/api/chat": self._chat,
                "/api/show": self._show,
                "/api/pull": self._pull,
                "/api/embed": self._embed,
                "/api/embeddings": self._embeddings,
            }
        )

    # --- endpoints ------------------------------------------------------------------

    def _root(self, body: Any) -> None:
        self._send_text(200, "Ollama is running")

    def _version(self, body: Any) -> None:
        self._send_json(200, {"version": VERSION})

    def _model_entry(self, model: _Model) -> dict[str, Any]:
        size = model.path.stat().st_size
        return {
            "name": model.name,
            "model": model.name,
            "modified_at": model.modified_at,
            "size": size,
            "digest": model.digest.removeprefix("sha256:"),
            "details": self._details(model),
        }

    def _details(self, model: _Model) -> dict[str, Any]:
        count = model.metadata.get("general.parameter_count")
        size = count if isinstance(count, int) else model.path.stat().st_size // 4
        return {
            "parent_model": "",
            "format": "gguf",
            "family": model.architecture,
            "families": [model.architecture],
            "parameter_size": f"{size / 1e6:.1f}M",
            "quantization_level": "F32",
        }

    def _tags(self, body: Any) -> None:
        with self.owner._guard:
            models = list(self.owner.models.values())
        self._send_json(200, {"models": [self._model_entry(m) for m in models]})

    def _ps(self, body: Any) -> None:
        with self.owner._guard:
            loaded = [m for m in self.owner.models.values() if m.llm is not None]
        entries = [{**self._model_entry(m), "context_length": self.owner.n_ctx} for m in loaded]
        self._send_json(200, {"models": entries})

    def _require(self, body: Any, key: str = "model") -> tuple[str, _Model]:
        if not isinstance(body, dict):
            raise _HTTPError(400, "invalid request body")
        name = body.get(key) or body.get("name")
        if not isinstance(name, str) or not name:
            raise _HTTPError(400, "model is required")
        model = self.owner.model(name)
        if model is None:
            raise _not_found(name)
        return name, model

    def _show(self, body: Any) -> None:
        _, model = self._require(body)
        info = {
            k: v
            for k, v in model.metadata.items()
            if not isinstance(v, list | dict) and not k.startswith("tokenizer.chat_template")
        }
        lines = [f"num_ctx                        {self.owner.n_ctx}"] if self.owner.modelfile_num_ctx else []
        lines += [f'stop                           "{stop}"' for stop in model.stop]
        parameters = "\n".join(lines)
        modelfile = (
            f'# Modelfile generated by "ollama show"\nFROM {model.path}\n'
            f'TEMPLATE """{model.template}"""\n'
            + "".join(f"PARAMETER {line}\n" for line in parameters.splitlines())
        )
        self._send_json(
            200,
            {
                "modelfile": modelfile,
                "parameters": parameters,
                "template": model.template,
                "details": self._details(model),
                "model_info": info,
                "capabilities": ["completion", "embedding", *(["tools"] if model.tool_syntax else [])],
                "modified_at": model.modified_at,
            },
        )

    def _generate(self, body: Any) -> None:
        name, model = self._require(body)
        options = body.get("options") or {}
        prompt = body.get("prompt") or ""
        if "prompt" not in body and not body.get("images"):  # Ollama's "load a model" request
            with model.lock:
                self.owner.load(model)
            self._send_json(
                200,
                {"model": name, "created_at": _now(), "response": "", "done": True, "done_reason": "load"},
            )
            return
        if body.get("template"):
            values = {"System": body.get("system") or "", "Prompt": prompt, "Response": ""}
            prompt = render_go_template(body["template"], values)
        elif not body.get("raw") and model.format is not None:
            prompt = model.format.render(prompt, body.get("system") or None)
        lines = self._recorded(
            name, self._generate_lines(name, model, prompt, options, body.get("format"), body.get("raw"))
        )
        if body.get("stream", True):
            self._stream(lines)
            return
        text, final = [], {}
        for line in lines:
            text.append(line["response"])
            final = line
        final["response"] = "".join(text)
        self._send_json(200, final)

    def _recorded(self, name: str, lines: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``lines``, recording in ``generations`` how many tokens were generated when they end."""
        tokens, finished = 0, False
        try:
            for line in lines:
                if line.get("done"):
                    finished = True
                elif line.get("response"):
                    tokens += 1
                yield line
        finally:
            lines.close()  # type: ignore[attr-defined]
            self.owner.generations.append((name, tokens, finished))

    def _chat(self, body: Any) -> None:
        name, model = self._require(body)
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise _HTTPError(400, "messages is required")
        tools = body.get("tools") or None
        syntax = model.tool_syntax
        if tools and syntax is None:
            raise _HTTPError(400, f"registry.ollama.ai/library/{name} does not support tools")
        if any(m.get("images") for m in messages if isinstance(m, dict)):
            raise _HTTPError(500, f"{name} does not support images (it has no vision projector)")
        try:
            prompt = model.render(messages, tools)
        except Exception as error:  # Ollama reports a template the messages break as a 500
            cause = error.__cause__ if isinstance(error.__cause__, ChatTemplateError) else error
            raise _HTTPError(500, f"template: {cause}") from error
        options = body.get("options") or {}
        if body.get("truncate") is False:
            self._check_fits(model, prompt, options)
        lines = self._recorded(
            name, self._generate_lines(name, model, prompt, options, body.get("format"), True)
        )
        chat_lines = _chat_lines(lines, think=bool(body.get("think")))
        if tools:
            chat_lines = _tool_call_lines(chat_lines, ToolCallParser(syntax))
        if body.get("stream", True):
            self._stream(chat_lines)
            return
        content, thinking, calls, final = [], [], [], {}
        for line in chat_lines:
            content.append(line["message"]["content"])
            thinking.append(line["message"].get("thinking", ""))
            calls.extend(line["message"].get("tool_calls", []))
            final = line
        final["message"]["content"] = "".join(content)
        if any(thinking):
            final["message"]["thinking"] = "".join(thinking)
        if calls:
            final["message"]["tool_calls"] = calls
        self._send_json(200, final)

    def _check_fits(self, model: _Model, prompt: str, options: dict[str, Any]) -> None:
        """Ollama's ``truncate: false``: a prompt that does not fit the context is a 400 (the
        runner's error, as a JSON string), not cut at the front."""
        with model.lock:
            n_prompt = len(self.owner.load(model).tokenize(prompt.encode(), add_bos=True, special=True))
        n_ctx = int(options.get("num_ctx") or self.owner.n_ctx)
        if n_prompt >= n_ctx:
            message = (
                f"request ({n_prompt} tokens) exceeds the available context size ({n_ctx} tokens), "
                "try increasing it"
            )
            error = {"code": 400, "message": message, "type": "exceed_context_size_error"}
            error.update(n_prompt_tokens=n_prompt, n_ctx=n_ctx)
            raise _HTTPError(400, json.dumps({"error": error}))

    def _generate_lines(
        self, name: str, model: _Model, prompt: str, options: dict[str, Any], fmt: Any, raw: Any
    ) -> Iterator[dict[str, Any]]:
        start = time.perf_counter_ns()
        with model.lock:
            loaded_before = model.llm is not None
            llm = self.owner.load(model)
            load_ns = 0 if loaded_before else time.perf_counter_ns() - start
            prompt_tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)
            n_ctx = int(options.get("num_ctx") or self.owner.n_ctx)
            if len(prompt_tokens) >= n_ctx:  # Ollama truncates; the test server keeps the end
                prompt_tokens = prompt_tokens[-(n_ctx // 2) :]
            limit = int(options.get("num_predict", -1))
            room = llm.n_ctx() - len(prompt_tokens)
            max_tokens = room if limit < 0 else min(limit, room)
            inject = self.owner._take_injected()
            params: dict[str, Any] = {
                "max_tokens": max(max_tokens, 0),
                "temperature": options.get("temperature", 0.8),
                "top_k": options.get("top_k", 40),
                "top_p": options.get("top_p", 0.9),
                "min_p": options.get("min_p", 0.0),
                "repeat_penalty": options.get("repeat_penalty", 1.1),
                "stop": options.get("stop") or list(model.stop),
                "stream": True,
            }
            if options.get("seed") is not None:
                params["seed"] = int(options["seed"])
            grammar = self._grammar(fmt)
            if grammar is not None:
                params["grammar"] = grammar
            eval_start = time.perf_counter_ns()
            first_token_ns: int | None = None
            generated: list[int] = []
            finish: str | None = None
            count = 0
            for chunk in llm.create_completion(prompt_tokens, **params):
                if first_token_ns is None:
                    first_token_ns = time.perf_counter_ns()
                choice = chunk["choices"][0]
                text = choice.get("text") or ""
                finish = choice.get("finish_reason") or finish
                if text:
                    count += 1
                    generated.extend(llm.tokenize(text.encode(), add_bos=False, special=True))
                    if inject is not None and count > inject.after_tokens:
                        raise _HTTPError(500, inject.message)
                    yield {"model": name, "created_at": _now(), "response": text, "done": False}
            end = time.perf_counter_ns()
        prompt_ns = (first_token_ns or end) - eval_start
        final: dict[str, Any] = {
            "model": name,
            "created_at": _now(),
            "response": "",
            "done": True,
            "done_reason": "length" if finish == "length" else "stop",
            "total_duration": end - start,
            "load_duration": load_ns,
            "prompt_eval_count": len(prompt_tokens),
            "prompt_eval_duration": prompt_ns,
            "eval_count": count,
            "eval_duration": end - (first_token_ns or end),
        }
        if not raw:
            final["context"] = [int(t) for t in [*prompt_tokens, *generated]]
        for key in self.owner.omit_final_fields:
            final.pop(key, None)
        yield final

    def _grammar(self, fmt: Any) -> Any:
        if not fmt:
            return None
        from llama_cpp import LlamaGrammar
        from llama_cpp.llama_grammar import JSON_GBNF

        if fmt == "json":
            return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
        if isinstance(fmt, dict):
            try:
                return LlamaGrammar.from_json_schema(json.dumps(fmt), verbose=False)
            except Exception as error:
                raise _HTTPError(400, f"invalid JSON schema in format: {error}") from error
        raise _HTTPError(400, f'invalid format: {fmt!r}; expected "json" or a JSON schema')

    def _pull(self, body: Any) -> None:
        raw_name = body.get("model") or body.get("name") if isinstance(body, dict) else None
        if not isinstance(raw_name, str):
            raise _HTTPError(400, "model is required")
        name = normalise_name(raw_name)
        lines = self._pull_lines(name)
        if body.get("stream", True):
            self._stream(lines)
            return
        last: dict[str, Any] = {}
        for line in lines:
            last = line
        self._send_json(200, last)

    def _pull_lines(self, name: str) -> Iterator[dict[str, Any]]:
        yield {"status": "pulling manifest"}
        source = self.owner.pullable.get(name)
        existing = self.owner.model(name)
        if source is None and existing is None:
            raise _HTTPError(500, "pull model manifest: file does not exist")
        path = source if source is not None else existing.path  # type: ignore[union-attr]
        digest = _file_digest(path)
        total = path.stat().st_size
        label = f"pulling {digest.removeprefix('sha256:')[:12]}"
        yield {"status": label, "digest": digest, "total": total}
        for step in (1, 2, 3, 4):
            yield {"status": label, "digest": digest, "total": total, "completed": total * step // 4}
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        if existing is None:
            self.owner.add_model(name, path)
        yield {"status": "success"}

    def _vectors(self, model: _Model, texts: list[str]) -> tuple[list[list[float]], int]:
        with model.lock:
            embedder = self.owner.embedder(model)
            vectors: list[list[float]] = []
            tokens = 0
            for text in texts:
                if embedder is not None:
                    tokens += len(embedder.tokenize(text.encode(), add_bos=True, special=True))
                    raw = embedder.embed(text)
                    if raw and isinstance(raw[0], list):  # one vector per token: mean-pool
                        raw = [sum(col) / len(raw) for col in zip(*raw, strict=True)]
                    vectors.append([float(x) for x in raw])
                else:
                    tokens += len(text.split())
                    vectors.append(_hash_vector(text, int(model.metadata.get("llama.embedding_length", 64))))
        return vectors, tokens

    def _embed(self, body: Any) -> None:
        name, model = self._require(body)
        inputs = body.get("input", "")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        if not all(isinstance(t, str) for t in texts):
            raise _HTTPError(400, "invalid input type")
        start = time.perf_counter_ns()
        vectors, tokens = self._vectors(model, texts)
        self._send_json(
            200,
            {
                "model": name,
                "embeddings": [_normalised(v) for v in vectors],
                "total_duration": time.perf_counter_ns() - start,
                "load_duration": 0,
                "prompt_eval_count": tokens,
            },
        )

    def _embeddings(self, body: Any) -> None:
        _, model = self._require(body)
        vectors, _ = self._vectors(model, [str(body.get("prompt") or "")])
        self._send_json(200, {"embedding": vectors[0]})


def _chat_lines(lines: Iterator[dict[str, Any]], *, think: bool) -> Iterator[dict[str, Any]]:
    """/api/generate lines as /api/chat lines; with ``think``, ``<think>`` text goes to ``thinking``."""
    splitter = ReasoningSplitter() if think else None
    for line in lines:
        text = line.pop("response")
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if splitter is not None:
            thinking, message["content"] = splitter.feed(text) if not line["done"] else splitter.flush()
            if thinking:
                message["thinking"] = thinking
        yield {"model": line["model"], "created_at": line["created_at"], "message": message, **line}


def _tool_call_lines(lines: Iterator[dict[str, Any]], parser: ToolCallParser) -> Iterator[dict[str, Any]]:
    """Chat lines with the model's tool calls parsed out of ``content``: text streams on, each
    complete call comes as one line with ``message.tool_calls`` (``index`` after the first, as
    Ollama writes it), the text of a call that does not parse is given back as content."""
    for line in lines:
        message = line["message"]
        parsed = parser.finish() if line["done"] else parser.feed(message["content"])
        text, calls = parsed.content, []
        for i, call in enumerate(parsed.calls, start=parsed.first_index):
            if call.error is None and isinstance(call.args, dict) and call.name:
                function = {"index": i} if i else {}
                calls.append({"function": {**function, "name": call.name, "arguments": call.args}})
            else:
                text += call.args if isinstance(call.args, str) else json.dumps(call.args)
        message["content"] = text
        if calls:
            message["tool_calls"] = calls
        if text or calls or message.get("thinking") or line["done"]:
            yield line


def _normalised(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else vector


def _hash_vector(text: str, dim: int) -> list[float]:
    out: list[float] = []
    counter = 0
    while len(out) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    return out[:dim]


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.support.ollama_server --model PATH [--name NAME] --port N``."""
    parser = argparse.ArgumentParser(
        description="Serve GGUF models with Ollama's HTTP API (for tests and demos)."
    )
    parser.add_argument("--model", action="append", required=True, help="GGUF file to serve (repeatable)")
    parser.add_argument("--name", action="append", help="name for each --model (default: the file stem)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--n-ctx", type=int, default=2048)
    args = parser.parse_args(argv)
    names = args.name or []
    models = {(names[i] if i < len(names) else Path(p).stem): p for i, p in enumerate(args.model)}
    server = OllamaTestServer(models, host=args.host, port=args.port, n_ctx=args.n_ctx)
    print(f"Ollama test server on {server.base_url} serving {', '.join(server.models)}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
