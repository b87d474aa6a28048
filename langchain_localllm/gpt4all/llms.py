"""GPT4All models in process, through the gpt4all package."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.language_models import LangSmithParams
from langchain_core.outputs import GenerationChunk

from langchain_localllm._core.base_llm import LocalLLM
from langchain_localllm._core.compat import Ignored
from langchain_localllm._core.generation_info import timings_info
from langchain_localllm._core.stop_sequences import StopScanner
from langchain_localllm.errors import (
    ContextLengthExceededError,
    LocalLLMError,
)
from langchain_localllm.gpt4all.params import DEFAULT_MODEL_DIR, GPT4AllParams, import_gpt4all

__all__ = ["DEFAULT_MODEL_DIR", "GPT4All", "import_gpt4all"]


class GPT4All(GPT4AllParams, LocalLLM):
    """GPT4All models running in this process, via the gpt4all package.

    A drop-in replacement for ``langchain_community.llms.GPT4All`` that really
    streams: tokens arrive as gpt4all produces them, stop sequences end
    generation at once (no partial stop string is ever emitted), ``max_tokens``
    is honoured, nothing is downloaded unless ``allow_download=True``, and
    instances of one model share one loaded copy behind a lock.

    Setup:
        ```bash
        pip install -U "langchain-localllm[gpt4all]"
        ```
        and a GGUF model file (e.g. from the GPT4All app's model folder).

    Key init args — model loading:
        model: str
            Path of the GGUF file, or its file name inside ``model_path``.
        model_path: str | None
            Folder holding the model (default: ``~/.cache/gpt4all``).
        n_ctx: int
            Context window (2048).
        device: str
            "cpu" (default), "gpu", "kompute", "cuda" or a GPU name.
        allow_download: bool
            Download a missing model from gpt4all.io (False: never).

    Key init args — generation:
        max_tokens, temp, top_k, top_p, min_p, repeat_penalty, repeat_last_n, n_batch, stop

    Instantiate:
        ```python
        from langchain_localllm import GPT4All

        llm = GPT4All(model="/models/orca-mini-3b-gguf2-q4_0.gguf", max_tokens=128)
        ```

    Invoke:
        ```python
        llm.invoke("The first man on the moon was")
        ```

    Stream:
        ```python
        for token in llm.stream("The first man on the moon was"):
            print(token, end="", flush=True)
        ```

    Async:
        ```python
        await llm.ainvoke("The first man on the moon was")
        async for token in llm.astream("The first man on the moon was"):
            print(token, end="", flush=True)
        ```

    gpt4all has no seed: passing one warns (``UnsupportedParameterWarning``);
    use ``temp=0`` for reproducible output.
    """

    _peer_ignored: ClassVar[Mapping[str, Ignored]] = {
        "client": Ignored(None, "the model is loaded from model and shared through the model cache"),
        "backend": Ignored(None, "gpt4all detects the architecture from the file"),
        "n_parts": Ignored(-1, "gpt4all has no model parts"),
        "f16_kv": Ignored(False, "gpt4all chooses its KV cache type itself"),
        "logits_all": Ignored(False, "gpt4all does not return logits"),
        "vocab_only": Ignored(False, "gpt4all always loads the weights"),
        "use_mlock": Ignored(False, "gpt4all has no mlock setting"),
        "embedding": Ignored(False, "use GPT4AllEmbeddings for embeddings"),
        "echo": Ignored(False, "the answer never repeats the prompt"),
    }

    # --- generation --------------------------------------------------------------------

    def _iter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> Iterator[GenerationChunk]:
        args = self._call_args(kwargs)
        loaded = self.load()
        with loaded.lock:
            yield from _generate_locked(loaded.model, prompt, args, stop, self.model_name)

    # --- LangChain metadata --------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "gpt4all"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "gpt4all"
        params.update(self._ls_sampling(self._stop_sequences(stop), kwargs))  # type: ignore[typeddict-item]
        return params


@dataclass
class _RunState:
    """What gpt4all's callbacks report during one generation."""

    halt: bool = False
    error: str = ""
    prompt_tokens: int = 0
    tokens: int = 0
    tail: str = ""
    """The last generated characters, as long as the longest stop sequence."""


def _generate_locked(
    model: Any, prompt: str, args: dict[str, Any], stop: list[str], name: str
) -> Iterator[GenerationChunk]:
    """Stream one completion from a gpt4all model (its lock is held by the caller)."""
    scanner = StopScanner(stop)
    state = _RunState()
    longest = max(map(len, stop), default=0)

    def on_token(token_id: int, text: str) -> bool:
        if token_id == -1:  # gpt4all reports errors as a "token" with id -1
            state.error = text
            return False
        state.tokens += 1
        if longest:
            # gpt4all generates in a worker thread that runs ahead of the consumer: seeing the
            # stop sequence here ends generation after this token (which still reaches the
            # consumer, whose scanner cuts the text), not when the consumer gets there.
            window = state.tail + str(text)
            state.tail = window[-longest:]
            if any(s in window for s in stop):
                halt, state.halt = state.halt, True
                return not halt
        return not state.halt

    def on_prompt_token(_token_id: int) -> bool:
        state.prompt_tokens += 1
        return True

    llmodel = model.model
    llmodel._prompt_callback = on_prompt_token  # safe: the caller holds this model's lock
    started = time.perf_counter()
    first = None
    # What GPT4All.generate does without a chat session, plus special=True: prompts laid out
    # in a chat format hold special tokens (<|im_start|>, ...) that must not be split as text.
    sampling = {k: v for k, v in args.items() if k != "max_tokens"}
    pieces = llmodel.prompt_model_streaming(
        prompt, "%1", on_token, n_predict=args["max_tokens"], reset_context=True, special=True, **sampling
    )
    try:
        for piece in pieces:
            first = first or time.perf_counter()
            text = scanner.feed(piece)
            if text:
                yield GenerationChunk(text=text)
            if scanner.stopped:
                break
    finally:
        state.halt = True
        for _ in pieces:  # let gpt4all's worker thread finish before the lock is released
            pass
        del llmodel._prompt_callback
    if state.error:
        raise _gpt4all_error(state.error, model, args)
    if tail := scanner.flush():
        yield GenerationChunk(text=tail)
    ended = time.perf_counter()
    completion, prompt_tokens = state.tokens, state.prompt_tokens
    first = first or ended
    finish = "length" if completion >= args["max_tokens"] and not scanner.stopped else "stop"
    prompt_ms, predicted_ms = (first - started) * 1000, (ended - first) * 1000
    yield GenerationChunk(
        text="",
        generation_info={
            "finish_reason": finish,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion,
            },
            "timings": timings_info(
                prompt_tokens, prompt_ms, completion, predicted_ms, predicted_rate_n=max(completion - 1, 0)
            ),
            "model": name,
        },
    )


def _gpt4all_error(message: str, model: Any, args: dict[str, Any]) -> LocalLLMError:
    n_ctx = getattr(model.model, "n_ctx", None)
    if "context window" in message:
        return ContextLengthExceededError(
            f"GPT4All: the prompt does not fit the context window (n_ctx={n_ctx}, "
            f"max_tokens={args['max_tokens']}); gpt4all said: {message!r}. Shorten the prompt or "
            "create the model with a larger n_ctx.",
            n_ctx=n_ctx,
            max_tokens=args["max_tokens"],
            prompt_tokens=None,
        )
    return LocalLLMError(f"GPT4All: gpt4all reported an error: {message}")
