"""The package's public surface and its import weight."""

from __future__ import annotations

import json
import subprocess
import sys

import langchain_localllm

EXPECTED_ALL = [
    "BatchDecodeError",
    "ChatTemplateError",
    "ChatTemplateLimitError",
    "EmbeddingMismatchError",
    "EngineClosedError",
    "TokenBudgetError",
    "TruncatedOutputError",
    "UnsupportedArchitectureError",
    "ChatLlamafile",
    "ChatOpenAICompatible",
    "ChatGPT4All",
    "ChatLlamaCpp",
    "ChatOllama",
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
    "Llamafile",
    "LlamafileEmbeddings",
    "LocalLLMError",
    "MalformedResponseError",
    "MissingChatTemplateError",
    "MissingDependencyError",
    "ModelFileNotFoundError",
    "ModelNotFoundError",
    "Ollama",
    "OllamaEmbeddings",
    "OpenAICompatible",
    "OpenAICompatibleEmbeddings",
    "OllamaLLM",
    "OllamaClient",
    "LlamaServerClient",
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


def test_every_error_class_is_exported() -> None:
    import langchain_localllm.errors as errors

    assert set(errors.__all__) <= set(langchain_localllm.__all__)


def test_all_is_the_documented_surface() -> None:
    assert sorted(langchain_localllm.__all__) == sorted(EXPECTED_ALL)


def test_every_public_name_resolves() -> None:
    for name in langchain_localllm.__all__:
        assert getattr(langchain_localllm, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        langchain_localllm.NoSuchThing  # noqa: B018
    except AttributeError as error:
        assert "NoSuchThing" in str(error)
    else:
        raise AssertionError("expected AttributeError")


def test_version_is_the_installed_distribution() -> None:
    assert langchain_localllm.__version__.count(".") >= 2


def test_import_is_light() -> None:
    """Importing the package (and naming a class) loads no runtime or community code."""
    code = (
        "import sys, json, langchain_localllm\n"
        "from langchain_localllm import LlamaCpp, GPT4All, Ollama, Llamafile\n"
        "heavy = ['llama_cpp', 'gpt4all', 'langchain_community', 'numpy', 'gguf']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_errors_derive_from_base_and_builtins() -> None:
    from langchain_localllm import errors

    assert issubclass(errors.ModelFileNotFoundError, FileNotFoundError)
    assert issubclass(errors.InvalidModelFileError, ValueError)
    assert issubclass(errors.ContextLengthExceededError, ValueError)
    assert issubclass(errors.ServerUnreachableError, ConnectionError)
    assert issubclass(errors.ServerTimeoutError, TimeoutError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    for name in errors.__all__:
        cls = getattr(errors, name)
        if name != "UnsupportedParameterWarning":
            assert issubclass(cls, errors.LocalLLMError), name


def test_errors_pickle_with_their_details() -> None:
    import pickle

    from langchain_localllm.errors import ContextLengthExceededError

    error = ContextLengthExceededError("too long", partial_text="abc", prompt_tokens=9, n_ctx=8)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.partial_text, copy.prompt_tokens, copy.n_ctx) == ("too long", "abc", 9, 8)


def test_ollama_llm_is_exported_under_langchain_ollamas_name_too() -> None:
    from langchain_localllm import Ollama, OllamaLLM

    assert OllamaLLM is Ollama
