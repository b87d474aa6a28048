"""Turn what a local model server says went wrong into typed errors with a fix.

Both dialects are understood, whichever backend is talking:

* llama.cpp's server (and llamafile 0.10+): ``{"error": {"code", "message", "type"}}``,
  ``type == "exceed_context_size_error"`` with ``n_prompt_tokens`` and ``n_ctx``;
  mid-stream as an SSE event ``data: {"error": {...}}``.
* Ollama: ``{"error": "message"}``; an unknown model is 404 ``model 'x' not found``;
  mid-stream as a last NDJSON line ``{"error": "..."}`` under status 200.
* Older llamafile servers and proxies: a plain-text (or HTML) body.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from langchain_localllm.errors import (
    ContextLengthExceededError,
    GenerationError,
    InvalidParameterError,
    LocalLLMError,
    ModelNotFoundError,
    ServerResponseError,
)


@dataclass(frozen=True)
class ServerKind:
    """What kind of server a client talks to, for messages that say how to fix things."""

    name: str
    """Display name, e.g. ``"Ollama"``."""
    start_hint: str
    """How to start it, e.g. ``"start it with `ollama serve`"``."""
    pull_hint: str | None = None
    """How to get a missing model; ``{model}`` is replaced by its name."""
    auth_hint: str = "Pass the credentials the server expects with headers={'Authorization': 'Bearer ...'}."
    """How to authenticate, naming arguments the classes of this server accept (for 401/403)."""


OLLAMA = ServerKind(
    name="Ollama",
    start_hint=(
        "start it with `ollama serve` (or the Ollama app), or set base_url / OLLAMA_HOST to where it runs"
    ),
    pull_hint="Download it with `ollama pull {model}` or Ollama(model={model!r}).pull()",
    auth_hint=(
        "Ollama itself has no keys, so a proxy in front of it refused: pass what it expects with "
        "headers={'Authorization': 'Bearer ...'}."
    ),
)
LLAMA_SERVER = ServerKind(
    name="llamafile/llama-server",
    start_hint=(
        "start it with `./model.llamafile --server --nobrowser` (or `llama-server -m model.gguf`), "
        "or set base_url to where it runs"
    ),
    auth_hint=(
        "Pass the key the server was started with (--api-key) as api_key='...', "
        "or headers={'Authorization': 'Bearer ...'}."
    ),
)

_CONTEXT_PATTERNS = re.compile(
    r"exceed[s]? (the )?(available )?context|context (size|length|window) (exceeded|is too small)|"
    r"(input|prompt) (length|is too long).*context|too many tokens|"
    r"maximum context length is|context length is only|exceeded max context length",  # vLLM, Ollama /v1
    re.IGNORECASE,
)
# vLLM: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens"
# and "... the model's context length is only 4096 tokens".
_VLLM_CTX = re.compile(r"context length is (?:only )?(\d+) tokens", re.IGNORECASE)
_VLLM_REQUESTED = re.compile(r"you requested (\d+) tokens", re.IGNORECASE)


@dataclass
class ServerErrorInfo:
    """The parts of an error payload, whatever its dialect."""

    message: str
    type: str | None = None
    code: int | None = None
    extra: dict[str, Any] | None = None


def parse_error_payload(payload: Any) -> ServerErrorInfo | None:
    """The error carried by a decoded JSON payload, or None if it carries none."""
    if not isinstance(payload, dict) or "error" not in payload:
        return None
    error = payload["error"]
    if isinstance(error, dict):
        extra = {k: v for k, v in error.items() if k not in ("message", "type", "code")}
        extra.update({k: v for k, v in payload.items() if k != "error"})
        code = error.get("code")
        return ServerErrorInfo(
            message=str(error.get("message") or error),
            type=error.get("type"),
            code=code if isinstance(code, int) else None,
            extra=extra,
        )
    return ServerErrorInfo(message=str(error), extra={k: v for k, v in payload.items() if k != "error"})


def parse_error_body(body: bytes) -> ServerErrorInfo:
    """The error in an HTTP error body: JSON envelope, or plain text from older servers."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    info = parse_error_payload(payload)
    if info is not None:
        return info
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return ServerErrorInfo(message=payload["message"], type=payload.get("type"))
    if text.lstrip().lower().startswith("<"):  # an HTML error page
        text = re.sub(r"<[^>]+>", " ", text)
        text = " ".join(text.split())
    return ServerErrorInfo(message=text[:500] or "(empty body)")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _context_error(info: ServerErrorInfo, url: str, server: ServerKind, partial_text: str) -> LocalLLMError:
    extra = info.extra or {}
    prompt_tokens = _int(extra.get("n_prompt_tokens"))
    n_ctx = _int(extra.get("n_ctx"))
    if n_ctx is None and (found := _VLLM_CTX.search(info.message)):
        n_ctx = int(found.group(1))
        requested = _VLLM_REQUESTED.search(info.message)
        prompt_tokens = int(requested.group(1)) if requested else None
    counts = ""
    if prompt_tokens is not None and n_ctx is not None:
        counts = f" The prompt has {prompt_tokens} tokens; the context window is {n_ctx}."
    msg = (
        f"The prompt does not fit the model's context window at {url}: {info.message}.{counts} "
        f"Shorten the prompt (or split the input), or give the {server.name} server a larger context "
        "(llama-server/llamafile: `-c N`; Ollama: num_ctx=N)."
    )
    return ContextLengthExceededError(
        msg,
        partial_text=partial_text,
        url=url,
        prompt_tokens=prompt_tokens,
        n_ctx=n_ctx,
        max_tokens=None,
        server_message=info.message,
    )


def error_from_response(
    status_code: int,
    body: bytes,
    url: str,
    server: ServerKind,
    *,
    model: str | None = None,
) -> LocalLLMError:
    """The typed error for an HTTP error status with ``body``."""
    info = parse_error_body(body)
    text = body.decode("utf-8", errors="replace")
    lowered = info.message.lower()
    common: dict[str, Any] = {
        "url": url,
        "status_code": status_code,
        "body": text,
        "server_message": info.message,
    }
    if info.type == "exceed_context_size_error" or _CONTEXT_PATTERNS.search(info.message):
        return _context_error(info, url, server, "")
    if status_code == 404 and "not found" in lowered and ("model" in lowered or "pull" in lowered):
        name = model or "the model"
        hint = f" {server.pull_hint.format(model=model or 'NAME')}." if server.pull_hint else ""
        msg = f"{server.name} at {url} does not have {name!r}: {info.message}.{hint}"
        return ModelNotFoundError(msg, model=model, **common)
    if status_code == 404:
        msg = (
            f"{url} answered 404 Not Found ({info.message}). Is base_url the address of a "
            f"{server.name} server? If not, {server.start_hint}."
        )
        return ServerResponseError(msg, **common)
    if status_code in (401, 403):
        msg = (
            f"{server.name} at {url} refused the request ({status_code}: {info.message}). {server.auth_hint}"
        )
        return ServerResponseError(msg, **common)
    if status_code == 400 or info.type == "invalid_request_error":
        msg = (
            f"{server.name} at {url} rejected the request (400: {info.message}). "
            "Check the parameters passed (grammar, json_schema, format, options...)."
        )
        return InvalidParameterError(msg, **common)
    if status_code == 503:
        msg = (
            f"{server.name} at {url} is not ready (503: {info.message}); it is probably still "
            "loading the model. Retry in a moment."
        )
        return ServerResponseError(msg, **common)
    msg = f"{server.name} at {url} answered {status_code}: {info.message}"
    return ServerResponseError(msg, **common)


def error_from_stream_payload(
    info: ServerErrorInfo, url: str, server: ServerKind, *, partial_text: str = ""
) -> LocalLLMError:
    """The typed error for an error the server reported after the stream began."""
    if info.type == "exceed_context_size_error" or _CONTEXT_PATTERNS.search(info.message):
        return _context_error(info, url, server, partial_text)
    kept = f" after {len(partial_text)} characters" if partial_text else ""
    msg = (
        f"{server.name} at {url} reported an error in the middle of the answer{kept}: {info.message}. "
        "The text generated before it is in the error's partial_text."
    )
    return GenerationError(
        msg,
        partial_text=partial_text,
        url=url,
        server_message=info.message,
        error_type=info.type,
        code=info.code,
    )
