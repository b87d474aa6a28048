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
    from langchain_localllm.gpt4all.embeddings import GPT4AllEmbeddings
    from langchain_localllm.gpt4all.llms import GPT4All
    from langchain_localllm.llamacpp.embeddings import LlamaCppEmbeddings
    from langchain_localllm.llamacpp.llms import LlamaCpp
    from langchain_localllm.llamafile.client import LlamaServerClient
    from langchain_localllm.llamafile.embeddings import LlamafileEmbeddings
    from langchain_localllm.llamafile.llms import Llamafile
    from langchain_localllm.ollama.client import OllamaClient
    from langchain_localllm.ollama.embeddings import OllamaEmbeddings
    from langchain_localllm.ollama.llms import Ollama, OllamaLLM

try:
    __version__ = metadata.version("langchain-localllm")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

#: Public name -> module that defines it, imported on first access.
_LAZY = {
    "LlamaCpp": "langchain_localllm.llamacpp.llms",
    "GPT4All": "langchain_localllm.gpt4all.llms",
    "Ollama": "langchain_localllm.ollama.llms",
    "OllamaLLM": "langchain_localllm.ollama.llms",
    "Llamafile": "langchain_localllm.llamafile.llms",
    "LlamaCppEmbeddings": "langchain_localllm.llamacpp.embeddings",
    "GPT4AllEmbeddings": "langchain_localllm.gpt4all.embeddings",
    "OllamaEmbeddings": "langchain_localllm.ollama.embeddings",
    "LlamafileEmbeddings": "langchain_localllm.llamafile.embeddings",
    "OllamaClient": "langchain_localllm.ollama.client",
    "LlamaServerClient": "langchain_localllm.llamafile.client",
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
    "LlamaServerClient",
    "Llamafile",
    "LlamafileEmbeddings",
    "LocalLLMError",
    "MalformedResponseError",
    "MissingDependencyError",
    "ModelFileNotFoundError",
    "ModelNotFoundError",
    "Ollama",
    "OllamaClient",
    "OllamaEmbeddings",
    "OllamaLLM",
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
