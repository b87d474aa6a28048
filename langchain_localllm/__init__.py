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
    FleetUnavailableError,
    GenerationError,
    InvalidMessagesError,
    InvalidModelFileError,
    InvalidParameterError,
    LocalLLMError,
    MalformedResponseError,
    MissingChatTemplateError,
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
    from langchain_localllm.gpt4all.chat_models import ChatGPT4All
    from langchain_localllm.gpt4all.embeddings import GPT4AllEmbeddings
    from langchain_localllm.gpt4all.llms import GPT4All
    from langchain_localllm.llamacpp.chat_models import ChatLlamaCpp
    from langchain_localllm.llamacpp.embeddings import LlamaCppEmbeddings
    from langchain_localllm.llamacpp.llms import LlamaCpp
    from langchain_localllm.llamafile.chat_models import ChatLlamafile
    from langchain_localllm.llamafile.client import LlamaServerClient
    from langchain_localllm.llamafile.embeddings import LlamafileEmbeddings
    from langchain_localllm.llamafile.llms import Llamafile
    from langchain_localllm.ollama.chat_models import ChatOllama
    from langchain_localllm.ollama.client import OllamaClient
    from langchain_localllm.ollama.embeddings import OllamaEmbeddings
    from langchain_localllm.ollama.llms import Ollama, OllamaLLM
    from langchain_localllm.openai_compatible.chat_models import ChatOpenAICompatible
    from langchain_localllm.openai_compatible.embeddings import OpenAICompatibleEmbeddings
    from langchain_localllm.openai_compatible.llms import OpenAICompatible

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
    "ChatLlamafile": "langchain_localllm.llamafile.chat_models",
    "OpenAICompatible": "langchain_localllm.openai_compatible.llms",
    "OpenAICompatibleEmbeddings": "langchain_localllm.openai_compatible.embeddings",
    "ChatOpenAICompatible": "langchain_localllm.openai_compatible.chat_models",
    "OllamaClient": "langchain_localllm.ollama.client",
    "LlamaServerClient": "langchain_localllm.llamafile.client",
    "clear_model_cache": "langchain_localllm._core.model_cache",
    "ChatLlamaCpp": "langchain_localllm.llamacpp.chat_models",
    "ChatGPT4All": "langchain_localllm.gpt4all.chat_models",
    "ChatOllama": "langchain_localllm.ollama.chat_models",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = [
    "ChatGPT4All",
    "ChatLlamaCpp",
    "ChatLlamafile",
    "ChatOllama",
    "ChatOpenAICompatible",
    "ContextLengthExceededError",
    "DocumentLoadError",
    "FleetUnavailableError",
    "GPT4All",
    "GPT4AllEmbeddings",
    "GenerationError",
    "InvalidMessagesError",
    "InvalidModelFileError",
    "InvalidParameterError",
    "LlamaCpp",
    "LlamaCppEmbeddings",
    "LlamaServerClient",
    "Llamafile",
    "LlamafileEmbeddings",
    "LocalLLMError",
    "MalformedResponseError",
    "MissingChatTemplateError",
    "MissingDependencyError",
    "ModelFileNotFoundError",
    "ModelNotFoundError",
    "Ollama",
    "OllamaClient",
    "OllamaEmbeddings",
    "OllamaLLM",
    "OpenAICompatible",
    "OpenAICompatibleEmbeddings",
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
