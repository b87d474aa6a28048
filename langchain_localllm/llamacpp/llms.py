"""llama.cpp models in process, through llama-cpp-python."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LangSmithParams
from langchain_core.outputs import GenerationChunk, LLMResult
from langchain_core.runnables.config import ContextThreadPoolExecutor

from langchain_localllm._core.base.llm import LocalLLM
from langchain_localllm.llamacpp.budgeted import TokenBudget
from langchain_localllm.llamacpp.params import LlamaCppParams
from langchain_localllm.llamacpp.sharing import batched


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
        for text, info in self._complete(tokens, settings, loaded):
            yield GenerationChunk(text=text, generation_info=info)

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        """Several prompts (``batch``, ``generate``) run at once, sharing the forward passes."""
        if len(prompts) <= 1 or self.n_parallel <= 1:
            return super()._generate(prompts, stop, run_manager, **kwargs)
        with (
            batched(len(prompts)),
            ContextThreadPoolExecutor(max_workers=self._batch_workers(len(prompts))) as pool,
        ):
            results = list(
                pool.map(lambda p: LocalLLM._generate(self, [p], stop, run_manager, **kwargs), prompts)
            )
        return self._merged(results)

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        """Several prompts (``abatch``, ``agenerate``) run at once, sharing the forward passes."""
        if len(prompts) <= 1 or self.n_parallel <= 1:
            return await super()._agenerate(prompts, stop, run_manager, **kwargs)
        limit = asyncio.Semaphore(self._batch_workers(len(prompts)))

        async def one(prompt: str) -> LLMResult:
            async with limit:
                return await LocalLLM._agenerate(self, [prompt], stop, run_manager, **kwargs)

        with batched(len(prompts)):
            results = await asyncio.gather(*(one(p) for p in prompts))
        return self._merged(results)

    def _merged(self, results: list[LLMResult]) -> LLMResult:
        generations = [result.generations[0] for result in results]
        return LLMResult(generations=generations, llm_output=self._llm_output(generations))

    # --- LangChain metadata --------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "llamacpp"
        params.update(self._ls_sampling(self._stop_sequences(stop), kwargs))  # type: ignore[typeddict-item]
        return params
