"""Build the model a command runs on from the common options."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from pathlib import Path
from typing import Any

from langchain_localllm.cli.console import note
from langchain_localllm.errors import InvalidParameterError, MissingDependencyError

BACKENDS = ("llamacpp", "gpt4all", "ollama", "llamafile")
IN_PROCESS = ("llamacpp", "gpt4all")
HTTP = ("ollama", "llamafile")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The options every model-running command takes."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        help="runtime to use (default: llamacpp, or gpt4all when llama-cpp-python is not installed)",
    )
    group.add_argument(
        "--model",
        "-m",
        help="GGUF file (or a name from `localllm models`) for llamacpp/gpt4all; model name for ollama; "
        "optional for llamafile. Default: the embedded demo model (Gemma 3 270M with the [demo] "
        "extra, else a generated model with random weights)",
    )
    group.add_argument("--base-url", help="server URL for ollama/llamafile (default: their usual local port)")
    group.add_argument("--max-tokens", type=int, help="most tokens to generate per answer")
    group.add_argument("--temperature", type=float, help="sampling temperature (0: greedy)")
    group.add_argument("--seed", type=int, help="sampling seed, for reproducible output")
    group.add_argument("--n-ctx", type=int, help="context window (default: the model's; not for llamafile)")
    group.add_argument("--timings", action="store_true", help="print a timing summary on stderr at the end")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def pick_backend(args: argparse.Namespace) -> str:
    """The backend named by ``--backend``, else the first in-process runtime installed."""
    if args.backend:
        return str(args.backend)
    if _installed("llama_cpp"):
        return "llamacpp"
    if _installed("gpt4all"):
        return "gpt4all"
    raise MissingDependencyError(
        "No local runtime is installed: install one with `pip install 'langchain-localllm[llamacpp]'` "
        "(or [gpt4all]), or use a server with --backend ollama / --backend llamafile.",
    )


def _first_field(cls: type[Any], *names: str) -> str | None:
    fields = getattr(cls, "model_fields", {})
    return next((n for n in names if n in fields), None)


def _sampling_kwargs(cls: type[Any], args: argparse.Namespace) -> dict[str, Any]:
    """Map the generic options onto the backend's own field names."""
    kwargs: dict[str, Any] = {}
    for value, names in (
        (args.max_tokens, ("max_tokens", "num_predict", "n_predict")),
        (args.temperature, ("temperature", "temp")),
        (args.seed, ("seed",)),
    ):
        if value is None:
            continue
        field = _first_field(cls, *names)
        if field is None:
            note(f"{cls.__name__} has no {names[0]} setting; ignoring it.")
            continue
        kwargs[field] = value
    return kwargs


_ALIASES = {
    "max_tokens": ("max_tokens", "num_predict", "n_predict"),
    "temperature": ("temperature", "temp"),
    "repeat_penalty": ("repeat_penalty",),
}


def _default_kwargs(cls: type[Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The default model's generation settings under the backend's own field names."""
    kwargs: dict[str, Any] = {}
    for name, value in defaults.items():
        field = _first_field(cls, *_ALIASES.get(name, (name,)))
        if field is not None:
            kwargs[field] = value
    return kwargs


#: Chat model class per backend (module, class); llamafile's comes with the OpenAI-compatible work.
CHAT_CLASSES = {
    "llamacpp": ("langchain_localllm.llamacpp.chat_models", "ChatLlamaCpp"),
    "gpt4all": ("langchain_localllm.gpt4all.chat_models", "ChatGPT4All"),
    "ollama": ("langchain_localllm.ollama.chat_models", "ChatOllama"),
}


def build_llm(args: argparse.Namespace, *, callbacks: list[Any] | None = None, chat: bool = False) -> Any:
    """The LLM for the parsed options (announces the demo model on stderr when it is used).

    With ``chat=True``, the backend's chat model instead, where it has one."""
    backend = pick_backend(args)
    defaults: dict[str, Any] = {}
    if args.model is None and backend in IN_PROCESS:
        from langchain_localllm.cli.demo_model import default_model

        default = default_model(backend)
        note(default.label)
        model_path: Path | None = default.path
        defaults = default.generation
        chat = chat and not default.base_model
    elif backend in IN_PROCESS:
        from langchain_localllm.cli.discovery import resolve_model_path

        model_path = resolve_model_path(args.model)
    else:
        model_path = None

    if backend == "llamacpp":
        from langchain_localllm.llamacpp.llms import LlamaCpp

        kwargs: dict[str, Any] = {"model_path": str(model_path), "verbose": False}
        if args.n_ctx is not None:
            kwargs["n_ctx"] = args.n_ctx
        cls: type[Any] = LlamaCpp
    elif backend == "gpt4all":
        from langchain_localllm.gpt4all.llms import GPT4All

        kwargs = {"model": str(model_path)}
        if args.n_ctx is not None:
            kwargs["n_ctx"] = args.n_ctx
        cls = GPT4All
    elif backend == "ollama":
        from langchain_localllm.ollama.llms import Ollama

        if not args.model:
            raise InvalidParameterError(
                "--backend ollama needs --model NAME (e.g. --model llama3.2); "
                "`localllm models` lists the models your Ollama has.",
                parameter="model",
            )
        kwargs = {"model": args.model}
        if args.n_ctx is not None:
            kwargs["num_ctx"] = args.n_ctx
        cls = Ollama
    else:
        from langchain_localllm.llamafile.llms import Llamafile

        kwargs = {}
        cls = Llamafile
        if args.n_ctx is not None:
            note("--n-ctx is set when llama-server starts (its -c option); ignoring it here.")
        if args.model:
            field = _first_field(cls, "model")
            if field:
                kwargs[field] = args.model
    if chat and backend in CHAT_CLASSES:
        module, name = CHAT_CLASSES[backend]
        cls = getattr(importlib.import_module(module), name)
    if backend in HTTP and args.base_url:
        kwargs["base_url"] = args.base_url
    elif args.base_url:
        note(f"--base-url is for the ollama and llamafile backends; {backend} runs in this process.")
    kwargs.update(_default_kwargs(cls, defaults))
    kwargs.update(_sampling_kwargs(cls, args))
    if callbacks:
        kwargs["callbacks"] = callbacks
    return cls(**kwargs)
