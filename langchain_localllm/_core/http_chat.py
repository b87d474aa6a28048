"""What the server-backed chat models share on top of :class:`LocalChatModel`.

A subclass says how to build a request from the messages (``_build_request``) and how
to read the server's answers (a ``ResponseParser[ChatDelta]``); the exchange itself
is the one the LLMs use (``iter_exchange``/``aiter_exchange``), sync and async.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

from langchain_core.messages import BaseMessage

from langchain_localllm._core.chat_model import ChatDelta, LocalChatModel
from langchain_localllm._core.http_connection import ServerConnection
from langchain_localllm._core.http_llm import (
    ResponseParser,
    ServerRequest,
    aiter_exchange,
    check_call_kwargs,
    iter_exchange,
)


class ServerChatModel(ServerConnection, LocalChatModel):
    """Base of the chat models that call a local model server over HTTP."""

    _call_params: ClassVar[frozenset[str]] = frozenset()
    """Names accepted as per-call keyword arguments (``chat.invoke(m, temperature=0)``)."""

    streaming: bool = True
    """Ask the server to stream tokens. When False every call is one JSON request and the
    answer arrives as a single chunk."""

    def _build_request(
        self, messages: list[BaseMessage], stop: list[str], kwargs: dict[str, Any]
    ) -> ServerRequest:
        raise NotImplementedError

    def _new_parser(self) -> ResponseParser[ChatDelta]:
        raise NotImplementedError

    @property
    def _model_for_errors(self) -> str | None:
        return None

    def _check_call_kwargs(self, kwargs: dict[str, Any]) -> None:
        check_call_kwargs(kwargs, self._call_params, type(self).__name__)

    def _iter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> Iterator[ChatDelta]:
        request = self._build_request(messages, stop, kwargs)
        return iter_exchange(self.client, request, self._new_parser(), self._model_for_errors)

    def _aiter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> AsyncIterator[ChatDelta]:
        request = self._build_request(messages, stop, kwargs)
        return aiter_exchange(self.client, request, self._new_parser(), self._model_for_errors)
