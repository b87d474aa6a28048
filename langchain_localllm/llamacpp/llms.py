"""llama.cpp models in process, through llama-cpp-python."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any, ClassVar

from langchain_core.language_models import LangSmithParams
from langchain_core.outputs import GenerationChunk

from langchain_localllm._core.base_llm import LocalLLM
from langchain_localllm.llamacpp.budgeted import TokenBudget
from langchain_localllm.llamacpp.params import LlamaCppParams
from langchain_localllm.llamacpp.runtime import stream_completion


class LlamaCpp(LlamaCppParams, LocalLLM):
    """llama.cpp models running in this process, via llama-cpp-python.

    A drop-in replacement for ``langchain_community.llms.LlamaCpp``: the same
    arguments work, but settings you do not give come from the model file (rope,
    context length), instances of one model share one loaded copy, calls are
    serialised by a per-model lock held one step at a time (safe under threads and
    ``asyncio.gather``; a stream kept half read never blocks the next call, and resumes
    intact), tokens stream as llama.cpp produces them, a cancelled async call stops at
    once (also mid prompt evaluation), and errors are typed.

    Setup:
        ```bash
        pip install -U "langchain-localllm[llamacpp]"
        ```
        and a GGUF model file (for example from Hugging Face).

    Key init args — model loading:
        model_path: str
            Path of the GGUF file.
        n_ctx: int | None
            Context window; None/0 take it from the model file.
        n_batch: int
            Prompt tokens processed per step (512).
        n_gpu_layers: int
            Layers offloaded to a GPU build of llama.cpp.

    Key init args — generation:
        temperature: float
        max_tokens: int | None
        top_p, top_k, min_p, repeat_penalty: sampling parameters
        seed: int | None
            Fixed seed for reproducible sampling.
        stop: list[str] | None
            Stop sequences; per-call ``stop`` is added to these.
        grammar, json_schema:
            Constrain the output with a GBNF grammar or a JSON schema. With a schema the
            answer is valid JSON within ``max_tokens`` (the grammar narrows as the budget
            runs out; ``generation_info["budget_narrowed"]`` says when), or
            ``TokenBudgetError`` is raised before any token when the budget (or the context
            left after the prompt) cannot hold the shortest valid answer.

    Instantiate:
        ```python
        from langchain_localllm import LlamaCpp

        llm = LlamaCpp(model_path="model.gguf", temperature=0.7, max_tokens=256)
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

    ``generation_info`` of each generation holds ``finish_reason`` ("stop" or
    "length"), ``usage`` (prompt/completion/total tokens) and ``timings``
    (prompt and generation milliseconds and tokens per second, from llama.cpp).
    """

    suffix: str | None = None
    """Text that follows the completion (fill-in-the-middle models)."""

    _sampling_fields: ClassVar[tuple[str, ...]] = (*LlamaCppParams._sampling_fields, "suffix")

    def _iter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> Iterator[GenerationChunk]:
        settings = self._call_args(stop, kwargs)
        schema = kwargs.get("json_schema", self.json_schema)
        if schema is not None:  # valid within max_tokens, or TokenBudgetError before any token
            schema = json.loads(schema) if isinstance(schema, str) else schema
            settings = dataclasses.replace(settings, grammar=None, budget=TokenBudget(schema))
        loaded = self.load()
        tokens = loaded.model.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        for text, info in stream_completion(loaded, tokens, settings):
            yield GenerationChunk(text=text, generation_info=info)

    # --- LangChain metadata --------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "llamacpp"
        params.update(self._ls_sampling(self._stop_sequences(stop), kwargs))  # type: ignore[typeddict-item]
        return params
