"""Typed errors. Every error this package raises derives from :class:`LocalLLMError`.

Each class also derives from the matching built-in (``FileNotFoundError``,
``ValueError``, ``ConnectionError``, ``TimeoutError``, ``ImportError``...), so
existing ``except`` clauses keep working. Messages name the input that was wrong
and how to fix it.

Errors raised after some tokens were already generated carry them in
``partial_text``: nothing the caller already received is lost.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ContextLengthExceededError",
    "DocumentLoadError",
    "GenerationError",
    "InvalidModelFileError",
    "InvalidParameterError",
    "LocalLLMError",
    "MalformedResponseError",
    "MissingDependencyError",
    "ModelFileNotFoundError",
    "ModelNotFoundError",
    "ServerError",
    "ServerResponseError",
    "ServerTimeoutError",
    "ServerUnreachableError",
    "StreamInterruptedError",
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


class InvalidParameterError(LocalLLMError, ValueError):
    """A parameter has a value the runtime cannot use (negative temperature, ...)."""


class UnsupportedParameterError(LocalLLMError, ValueError):
    """The runtime cannot do what a parameter asks for."""


class UnsupportedParameterWarning(UserWarning):
    """A parameter kept for compatibility has no effect with this runtime."""


class DocumentLoadError(LocalLLMError, ValueError):
    """A document to index could not be used (missing, unreadable, binary, empty, ...).

    ``path`` names the file; files indexed before the error are kept.
    """


# --- models ------------------------------------------------------------------------


class ModelNotFoundError(LocalLLMError, LookupError):
    """The model does not exist where it was looked for (a file, or a server's store)."""


class ModelFileNotFoundError(ModelNotFoundError, FileNotFoundError):
    """The model path does not exist."""


class InvalidModelFileError(LocalLLMError, ValueError):
    """The model path exists but is not a loadable GGUF model file."""


class UnsupportedArchitectureError(InvalidModelFileError):
    """A valid model file whose architecture the chosen runtime does not know (``architecture``)."""


class ContextLengthExceededError(LocalLLMError, ValueError):
    """The prompt (plus the room asked for the answer) does not fit the context window.

    Attributes ``prompt_tokens``, ``n_ctx`` and ``max_tokens`` carry the numbers.
    """


# --- servers -----------------------------------------------------------------------


class ServerError(LocalLLMError):
    """Base class of errors talking to a local model server. ``url`` names the endpoint."""


class ServerUnreachableError(ServerError, ConnectionError):
    """Nothing answers at the configured URL; the message says how to start the server."""


class ServerTimeoutError(ServerError, TimeoutError):
    """The server did not answer within the configured timeout."""


class ServerResponseError(ServerError):
    """The server answered with an error status. ``status_code`` and ``body`` are kept."""


class GenerationError(ServerError):
    """The server reported an error in the middle of a streamed answer."""


class MalformedResponseError(ServerError, ValueError):
    """A response or stream line could not be parsed."""


class StreamInterruptedError(ServerError, ConnectionError):
    """The connection dropped before the stream said it was done."""
