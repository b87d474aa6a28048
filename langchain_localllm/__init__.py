"""LangChain integrations for local LLM runtimes: Ollama, llama.cpp, GPT4All and llamafile.

Everything listed in ``__all__`` is importable from here. Backends load lazily:
``import langchain_localllm`` imports neither llama_cpp nor gpt4all (nor
langchain_community); a runtime is imported the first time its model is used.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

from langchain_localllm._core.lazy import lazy_exports

if TYPE_CHECKING:
    # The public names, listed once: lazy_exports reads them (an `X as X` re-exports X).
    from langchain_localllm._inprocess.model_cache import (
        clear_model_cache as clear_model_cache,
    )
    from langchain_localllm.errors import (
        BatchDecodeError as BatchDecodeError,
        ChatTemplateError as ChatTemplateError,
        ChatTemplateLimitError as ChatTemplateLimitError,
        ContextLengthExceededError as ContextLengthExceededError,
        DocumentLoadError as DocumentLoadError,
        EmbeddingMismatchError as EmbeddingMismatchError,
        EngineClosedError as EngineClosedError,
        FleetUnavailableError as FleetUnavailableError,
        GenerationError as GenerationError,
        InvalidMessagesError as InvalidMessagesError,
        InvalidModelFileError as InvalidModelFileError,
        InvalidParameterError as InvalidParameterError,
        LocalLLMError as LocalLLMError,
        MalformedResponseError as MalformedResponseError,
        MissingChatTemplateError as MissingChatTemplateError,
        MissingDependencyError as MissingDependencyError,
        ModelFileNotFoundError as ModelFileNotFoundError,
        ModelNotFoundError as ModelNotFoundError,
        ServerError as ServerError,
        ServerResponseError as ServerResponseError,
        ServerTimeoutError as ServerTimeoutError,
        ServerUnreachableError as ServerUnreachableError,
        StreamInterruptedError as StreamInterruptedError,
        TokenBudgetError as TokenBudgetError,
        TruncatedOutputError as TruncatedOutputError,
        UnsupportedArchitectureError as UnsupportedArchitectureError,
        UnsupportedParameterError as UnsupportedParameterError,
        UnsupportedParameterWarning as UnsupportedParameterWarning,
    )
    from langchain_localllm.gpt4all.chat_models import (
        ChatGPT4All as ChatGPT4All,
    )
    from langchain_localllm.gpt4all.embeddings import (
        GPT4AllEmbeddings as GPT4AllEmbeddings,
    )
    from langchain_localllm.gpt4all.llms import (
        GPT4All as GPT4All,
    )
    from langchain_localllm.llamacpp.chat_models import (
        ChatLlamaCpp as ChatLlamaCpp,
    )
    from langchain_localllm.llamacpp.embeddings import (
        LlamaCppEmbeddings as LlamaCppEmbeddings,
    )
    from langchain_localllm.llamacpp.llms import (
        LlamaCpp as LlamaCpp,
    )
    from langchain_localllm.llamafile.chat_models import (
        ChatLlamafile as ChatLlamafile,
    )
    from langchain_localllm.llamafile.client import (
        LlamaServerClient as LlamaServerClient,
    )
    from langchain_localllm.llamafile.embeddings import (
        LlamafileEmbeddings as LlamafileEmbeddings,
    )
    from langchain_localllm.llamafile.llms import (
        Llamafile as Llamafile,
    )
    from langchain_localllm.ollama.chat_models import (
        ChatOllama as ChatOllama,
    )
    from langchain_localllm.ollama.client import (
        OllamaClient as OllamaClient,
    )
    from langchain_localllm.ollama.embeddings import (
        OllamaEmbeddings as OllamaEmbeddings,
    )
    from langchain_localllm.ollama.llms import (
        Ollama as Ollama,
        OllamaLLM as OllamaLLM,
    )
    from langchain_localllm.openai_compatible.chat_models import (
        ChatOpenAICompatible as ChatOpenAICompatible,
    )
    from langchain_localllm.openai_compatible.embeddings import (
        OpenAICompatibleEmbeddings as OpenAICompatibleEmbeddings,
    )
    from langchain_localllm.openai_compatible.llms import (
        OpenAICompatible as OpenAICompatible,
    )

try:
    __version__ = metadata.version("langchain-localllm")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), extra=("__version__",))
