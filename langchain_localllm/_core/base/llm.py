"""The base class of the four LLM backends.

Subclasses implement one thing per path, ``_iter_chunks`` (and ``_aiter_chunks``
when they have a real async client): a stream of ``GenerationChunk`` where only
the last chunk carries ``generation_info``. This class turns that into
``_stream``/``_astream`` (firing ``on_llm_new_token`` per token) and
``_generate``/``_agenerate`` (aggregating the stream), combines stop sequences,
keeps the classic ``callback_manager=`` argument working, and attaches the text
already generated to any error raised mid-stream.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core._api import LangChainDeprecationWarning
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from pydantic import ConfigDict, ValidationError, model_validator

from langchain_localllm._core.base.derived import DerivedState
from langchain_localllm._core.base.params import check_params, raise_from_validation_error
from langchain_localllm._core.base.peers import PeerArguments
from langchain_localllm._core.base.threads import aiter_in_thread
from langchain_localllm.errors import LocalLLMError


class LocalLLM(PeerArguments, DerivedState, BaseLLM):
    """Shared behaviour of ``LlamaCpp``, ``GPT4All``, ``Ollama`` and ``Llamafile``."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    stop: list[str] | None = None
    """Stop sequences for every call. Sequences passed to a call (``stop=[...]``) are
    added to these; generation ends at the first one found, which is not returned."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise_from_validation_error(error, type(self).__name__, type(self).model_fields)
        check_params(self.__dict__, type(self).__name__)

    @model_validator(mode="before")
    @classmethod
    def _accept_callback_manager(cls, values: Any) -> Any:
        """``callback_manager=`` (removed from langchain-core 1.x) still streams."""
        if isinstance(values, dict) and values.get("callback_manager") is not None:
            values = dict(values)
            manager = values.pop("callback_manager")
            warnings.warn(
                f"{cls.__name__}(callback_manager=...) is deprecated; pass the handlers as "
                "callbacks=[...] instead. Its handlers are used as the callbacks.",
                LangChainDeprecationWarning,
                stacklevel=4,
            )
            handlers = list(getattr(manager, "handlers", manager))
            existing = values.get("callbacks") or []
            values["callbacks"] = [*list(getattr(existing, "handlers", existing)), *handlers]
        elif isinstance(values, dict) and "callback_manager" in values:
            values = {k: v for k, v in values.items() if k != "callback_manager"}
        return values

    # --- what subclasses implement ---------------------------------------------------

    def _iter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> Iterator[GenerationChunk]:
        """Generate for one prompt; the last chunk carries ``generation_info``."""
        raise NotImplementedError

    def _aiter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> AsyncIterator[GenerationChunk]:
        """Async twin of ``_iter_chunks``; by default runs it in a worker thread."""
        return aiter_in_thread(lambda: self._iter_chunks(prompt, stop, **kwargs))

    @property
    def model_name(self) -> str:
        """A name for the model (file stem or server model name) for tracing and formats."""
        raise NotImplementedError

    def get_context_window(self) -> int | None:
        """The model's context window in tokens, if known (loads or asks the model)."""
        return None

    def chat_template(self) -> str | None:
        """The model's own chat template (Jinja) if it has one; used by prompt formats."""
        return None

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids by the model's own tokenizer; every backend implements it.

        LangChain's default would download GPT-2's tokenizer, which must never happen here.
        """
        raise NotImplementedError(f"{type(self).__name__} must count tokens with its model's tokenizer")

    # --- shared machinery --------------------------------------------------------------

    def _stop_sequences(self, stop: Sequence[str] | None) -> list[str]:
        """Instance stop sequences followed by the call's, without duplicates."""
        return list(dict.fromkeys([*(self.stop or []), *(stop or [])]))

    def _check_call_kwargs(self, kwargs: dict[str, Any]) -> None:
        check_params(kwargs, type(self).__name__)

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        self._check_call_kwargs(kwargs)
        delivered: list[str] = []
        try:
            for chunk in self._iter_chunks(prompt, self._stop_sequences(stop), **kwargs):
                if chunk.text:
                    delivered.append(chunk.text)
                    if run_manager is not None:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        except LocalLLMError as error:
            error.partial_text = error.partial_text or "".join(delivered)
            raise

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        self._check_call_kwargs(kwargs)
        delivered: list[str] = []
        chunks = self._aiter_chunks(prompt, self._stop_sequences(stop), **kwargs)
        try:
            async for chunk in chunks:
                if chunk.text:
                    delivered.append(chunk.text)
                    if run_manager is not None:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        except LocalLLMError as error:
            error.partial_text = error.partial_text or "".join(delivered)
            raise
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        generations: list[list[Generation]] = [
            [_aggregate(list(self._stream(prompt, stop, run_manager, **kwargs)))] for prompt in prompts
        ]
        return LLMResult(generations=generations, llm_output=self._llm_output(generations))

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        generations: list[list[Generation]] = []
        for prompt in prompts:
            chunks = [chunk async for chunk in self._astream(prompt, stop, run_manager, **kwargs)]
            generations.append([_aggregate(chunks)])
        return LLMResult(generations=generations, llm_output=self._llm_output(generations))

    def _llm_output(self, generations: list[list[Generation]]) -> dict[str, Any]:
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        for generation in (g for gens in generations for g in gens):
            for key, value in ((generation.generation_info or {}).get("usage") or {}).items():
                if key in usage and isinstance(value, int):
                    usage[key] += value
        return {"token_usage": usage, "model_name": self.model_name}


def _aggregate(chunks: list[GenerationChunk]) -> GenerationChunk:
    """One chunk with all the text and the merged ``generation_info`` (joined once)."""
    info: dict[str, Any] = {}
    for chunk in chunks:
        if chunk.generation_info:
            info.update(chunk.generation_info)
    return GenerationChunk(text="".join(c.text for c in chunks), generation_info=info or None)
