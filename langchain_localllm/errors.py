"""Typed errors. Every error this package raises derives from :class:`LocalLLMError`.

Each class also derives from the matching built-in (``FileNotFoundError``,
``ValueError``, ``ConnectionError``, ``TimeoutError``, ``ImportError``...), so
existing ``except`` clauses keep working. Messages name the input that was wrong
and how to fix it.

Errors about a model call also derive from langchain-core's ``ModelError`` family
(``ContextOverflowError``, ``ModelConnectionError``, ``ModelTimeoutError``,
``ModelNotFoundError``, ``ModelInvalidRequestError``, ``ModelAPIError``), with
``is_retryable`` saying truthfully whether the same request may succeed later, so
LangChain's retry and summarization middleware treat them correctly.

Errors raised after some tokens were already generated carry them in
``partial_text``: nothing the caller already received is lost.
"""

from __future__ import annotations

from typing import Any

from langchain_core import exceptions as _lc

__all__ = [
    "BatchDecodeError",
    "ChatTemplateError",
    "ChatTemplateLimitError",
    "ContextLengthExceededError",
    "DocumentLoadError",
    "EmbeddingMismatchError",
    "EngineClosedError",
    "FleetUnavailableError",
    "GenerationError",
    "InvalidMessagesError",
    "InvalidModelFileError",
    "InvalidParameterError",
    "LocalLLMError",
    "MalformedResponseError",
    "MissingChatTemplateError",
    "MissingDependencyError",
    "ModelFileNotFoundError",
    "ModelNotFoundError",
    "ServerError",
    "ServerResponseError",
    "ServerTimeoutError",
    "ServerUnreachableError",
    "StreamInterruptedError",
    "TokenBudgetError",
    "TruncatedOutputError",
    "UnsupportedArchitectureError",
    "UnsupportedParameterError",
    "UnsupportedParameterWarning",
]


class LocalLLMError(Exception):
    """Base class of every error raised by ``langchain_localllm``."""

    partial_text: str = ""
    """Text generated (and already delivered to callbacks) before the error."""

    def __init__(self, message: str, *, partial_text: str = "", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.partial_text = partial_text
        self.details = details
        for key, value in details.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only details survive pickling (multiprocessing, Ray, ...).
        return (_rebuild, (type(self), self.message, self.partial_text, self.details))


def _rebuild(cls: type[LocalLLMError], message: str, partial: str, details: dict[str, Any]) -> LocalLLMError:
    return cls(message, partial_text=partial, **details)


# --- configuration and input -------------------------------------------------------


class MissingDependencyError(LocalLLMError, ImportError):
    """A runtime package is not installed; the message names the extra to install."""


class InvalidParameterError(LocalLLMError, _lc.ModelInvalidRequestError, ValueError):
    """A parameter has a value the runtime cannot use (negative temperature, ...)."""


class UnsupportedParameterError(LocalLLMError, _lc.ModelInvalidRequestError, ValueError):
    """The runtime cannot do what a parameter asks for."""


class InvalidMessagesError(LocalLLMError, _lc.ModelInvalidRequestError, ValueError):
    """A chat model cannot use the messages it was given (none, an image for a text-only
    model, a role the model's chat template refuses, ...)."""


class UnsupportedParameterWarning(UserWarning):
    """A parameter kept for compatibility has no effect with this runtime."""


class TruncatedOutputError(LocalLLMError, _lc.OutputParserException):
    """A structured answer (``with_structured_output``) was cut off by the token budget
    (finish reason ``"length"``) before it was complete: it is never parsed into a value.

    ``llm_output`` holds the raw text received; with ``include_raw=True`` this error is the
    ``parsing_error`` next to the raw message. Raise ``max_tokens`` (``num_predict``).
    """


class DocumentLoadError(LocalLLMError, ValueError):
    """A document to index could not be used (missing, unreadable, binary, empty, ...).

    ``path`` names the file; files indexed before the error are kept.
    """


class EmbeddingMismatchError(LocalLLMError, ValueError):
    """An index was built with another embedding model than the one given to use it.

    Vectors of different models are not comparable. ``expected`` and ``got`` describe
    the two models; the message says how to re-index.
    """


# --- models ------------------------------------------------------------------------


class ModelNotFoundError(LocalLLMError, _lc.ModelNotFoundError, LookupError):
    """The model does not exist where it was looked for (a file, or a server's store)."""


class ModelFileNotFoundError(ModelNotFoundError, FileNotFoundError):
    """The model path does not exist."""


class InvalidModelFileError(LocalLLMError, ValueError):
    """The model path exists but is not a loadable GGUF model file."""


class UnsupportedArchitectureError(InvalidModelFileError):
    """A valid model file whose architecture the chosen runtime does not know (``architecture``)."""


class MissingChatTemplateError(LocalLLMError, _lc.ModelInvalidRequestError, ValueError):
    """A chat model cannot tell how to lay out a conversation for the model: its file has no
    chat template and its name matches no registered format. Pass ``chat_format=...``."""


class ChatTemplateError(LocalLLMError, ValueError):
    """A chat template could not lay out the conversation: it is broken, it refuses the
    messages (``raise_exception``), or it tried something the sandbox forbids.

    ``source`` names where the template came from ("GGUF file ...", "Ollama /api/show of
    model ... at ...", "llama-server /props at ...", a registered chat format); ``reason``
    is what went wrong, without the source.
    """

    source: str = ""
    reason: str = ""


class ChatTemplateLimitError(ChatTemplateError):
    """A chat template went past a bound of the sandbox: it ran too long, built too large
    a value or output, or recursed too deep. A model's template is untrusted code, so it is
    stopped instead of hanging the call or exhausting memory.

    ``limit`` names the bound (``"time"``, ``"size"``, ``"recursion"``, ``"memory"``).
    """

    limit: str = ""


class ContextLengthExceededError(LocalLLMError, _lc.ContextOverflowError, ValueError):
    """The prompt (plus the room asked for the answer) does not fit the context window.

    Attributes ``prompt_tokens``, ``n_ctx`` and ``max_tokens`` carry the numbers.
    """


# --- in-process batched decoding -----------------------------------------------------


class EngineClosedError(LocalLLMError, RuntimeError):
    """A request was sent to (or was still running in) a batched engine that was closed.

    ``partial_text`` holds what the request had generated before the engine closed.
    """


class BatchDecodeError(LocalLLMError, _lc.ModelAPIError, RuntimeError):
    """llama.cpp could not decode a batch (``code`` is ``llama_decode``'s return value).

    Only the sequences of that batch fail; their ``partial_text`` is kept, the engine
    goes on serving the others and new requests.
    """

    code: int = 0


# --- servers -----------------------------------------------------------------------


class ServerError(LocalLLMError):
    """Base class of errors talking to a local model server. ``url`` names the endpoint."""

    unanswered: bool = False
    """True when the server sent no byte of an answer (refused, or closed before answering):
    the request had no effect and a fleet may send it to another endpoint."""


class ServerUnreachableError(ServerError, _lc.ModelConnectionError, ConnectionError):
    """Nothing answers at the configured URL; the message says how to start the server."""


class ServerTimeoutError(ServerError, _lc.ModelTimeoutError, TimeoutError):
    """The server did not answer within the configured timeout."""


class ServerResponseError(ServerError, _lc.ModelAPIError):
    """The server answered with an error status. ``status_code`` and ``body`` are kept."""

    status_code: int | None = None

    @property
    def is_retryable(self) -> bool:  # type: ignore[override]
        """True for statuses a later retry may cure: 408, 429 and 5xx (a model still loading)."""
        code = self.status_code
        return code is None or code in (408, 429) or code >= 500


class GenerationError(ServerError, _lc.ModelAPIError):
    """The server reported an error in the middle of a streamed answer."""


class MalformedResponseError(ServerError, _lc.ModelAPIError, ValueError):
    """A response or stream line could not be parsed."""

    is_retryable = False


class StreamInterruptedError(ServerError, _lc.ModelConnectionError, ConnectionError):
    """The connection dropped before the stream said it was done."""


class FleetUnavailableError(ServerUnreachableError):
    """No endpoint of a fleet (``base_url=[...]``) could take a request.

    ``endpoints`` lists each URL with its state and last error; ``url`` names them all.
    """


# --- token budgets -----------------------------------------------------------------


class TokenBudgetError(InvalidParameterError):
    """The token budget cannot hold even the shortest valid answer, known before any token is
    generated: ``max_tokens`` is too small, or the prompt leaves too little of the context.

    ``minimum_tokens`` is what the shortest valid answer needs: its bytes over a server (a token
    is at least one byte, so that is what guarantees it), in process its tokens by the model's
    own tokenizer when fewer (the decoder can write it as those tokens itself); ``budget``
    what was available; with the
    context as the limit, ``prompt_tokens`` and ``n_ctx`` too. The message says how to fix it.
    """

    minimum_tokens: int = 0
    budget: int = 0
