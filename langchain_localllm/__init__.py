"""LangChain integrations for local LLM runtimes: Ollama, llama.cpp, GPT4All and llamafile.

Everything listed in ``__all__`` is importable from here. Backends load lazily:
``import langchain_localllm`` imports neither llama_cpp nor gpt4all (nor
langchain_community); a runtime is imported the first time its model is used.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

from langchain_localllm._core.lazy import lazy_exports
from langchain_localllm.errors import (
    ContextLengthExceededError,
    DocumentLoadError,
    GenerationError,
    InvalidModelFileError,
    InvalidParameterError,
    LocalLLMError,
    MalformedResponseError,
    MissingDependencyError,
    ModelFileNotFoundError,
    ModelNotFoundError,
    ServerError,
    ServerResponseError,
    ServerTimeoutError,
    ServerUnreachableError,
    StreamInterruptedError,
    UnsupportedParameterError,
    UnsupportedParameterWarning,
)

if TYPE_CHECKING:
    from langchain_localllm._core.model_cache import clear_model_cache
    from langchain_localllm.backends.gpt4all import GPT4All
    from langchain_localllm.backends.llamacpp import LlamaCpp
    from langchain_localllm.backends.llamafile import Llamafile
    from langchain_localllm.backends.ollama import Ollama
    from langchain_localllm.embeddings.gpt4all import GPT4AllEmbeddings
    from langchain_localllm.embeddings.llamacpp import LlamaCppEmbeddings
    from langchain_localllm.embeddings.llamafile import LlamafileEmbeddings
    from langchain_localllm.embeddings.ollama import OllamaEmbeddings

try:
    __version__ = metadata.version("langchain-localllm")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

#: Public name -> module that defines it, imported on first access.
_LAZY = {
    "LlamaCpp": "langchain_localllm.backends.llamacpp",
    "GPT4All": "langchain_localllm.backends.gpt4all",
    "Ollama": "langchain_localllm.backends.ollama",
    "Llamafile": "langchain_localllm.backends.llamafile",
    "LlamaCppEmbeddings": "langchain_localllm.embeddings.llamacpp",
    "GPT4AllEmbeddings": "langchain_localllm.embeddings.gpt4all",
    "OllamaEmbeddings": "langchain_localllm.embeddings.ollama",
    "LlamafileEmbeddings": "langchain_localllm.embeddings.llamafile",
    "clear_model_cache": "langchain_localllm._core.model_cache",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = [
    "ContextLengthExceededError",
    "DocumentLoadError",
    "GPT4All",
    "GPT4AllEmbeddings",
    "GenerationError",
    "InvalidModelFileError",
    "InvalidParameterError",
    "LlamaCpp",
    "LlamaCppEmbeddings",
    "Llamafile",
    "LlamafileEmbeddings",
    "LocalLLMError",
    "MalformedResponseError",
    "MissingDependencyError",
    "ModelFileNotFoundError",
    "ModelNotFoundError",
    "Ollama",
    "OllamaEmbeddings",
    "ServerError",
    "ServerResponseError",
    "ServerTimeoutError",
    "ServerUnreachableError",
    "StreamInterruptedError",
    "UnsupportedParameterError",
    "UnsupportedParameterWarning",
    "__version__",
    "clear_model_cache",
]
