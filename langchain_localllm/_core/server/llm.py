"""What the server LLMs (``Ollama``, ``Llamafile``, ``OpenAICompatible``) share on top of :class:`LocalLLM`.

A subclass says how to build a request (:meth:`ServerLLM._build_request`) and how to read
the server's answer (an :class:`~langchain_localllm._core.server.exchange.AnswerReader` of
``GenerationChunk``); the exchange itself, sync and async, is the one every server model
runs (:mod:`~langchain_localllm._core.server.exchange`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.outputs import GenerationChunk

from langchain_localllm._core.base.llm import LocalLLM
from langchain_localllm._core.server.exchange import AnswerReader, ServerModel, ServerRequest

__all__ = ["ServerLLM", "drop_none", "nanos_to_ms"]


class ServerLLM(ServerModel, LocalLLM):
    """Base of the LLMs that call a local model server over HTTP."""

    def _build_request(self, prompt: str, stop: list[str], kwargs: dict[str, Any]) -> ServerRequest:
        raise NotImplementedError

    def _new_reader(self) -> AnswerReader[GenerationChunk]:
        raise NotImplementedError

    def _iter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> Iterator[GenerationChunk]:
        return self._exchange(self._build_request(prompt, stop, kwargs), self._new_reader())

    async def _aiter_chunks(
        self, prompt: str, stop: list[str], **kwargs: Any
    ) -> AsyncIterator[GenerationChunk]:
        await self._aprepare()
        async for chunk in self._aexchange(self._build_request(prompt, stop, kwargs), self._new_reader()):
            yield chunk


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the entries that are None (unset options are not sent)."""
    return {key: value for key, value in values.items() if value is not None}


def nanos_to_ms(value: Any) -> float | None:
    """Ollama's integer nanoseconds as milliseconds."""
    return value / 1e6 if isinstance(value, int | float) and not isinstance(value, bool) else None
