"""The server chat pipeline: ``ChatOllama``, ``ChatLlamafile`` and ``ChatOpenAICompatible`` on one driver.

A call runs the same steps on every server chat model:

1. the tool layer reads the call's tools and response format (``tool_request``: one
   normaliser for every runtime);
2. the runtime builds its request (:meth:`ServerChatModel._build_request`), carrying out a
   constrained answer with its strategy (Ollama's ``format``, the dialect's schema field);
3. the runtime's reader (:meth:`ServerChatModel._new_reader`, an I/O-free
   :class:`~langchain_localllm._core.server.exchange.AnswerReader` of :class:`ChatDelta`)
   reads the answer; for a forced tool choice :class:`ForcedCallReader` wraps it and turns the
   constrained JSON back into the tool call;
4. the exchange every server model shares (:mod:`~langchain_localllm._core.server.exchange`)
   sends the request and drives the reader, sync or async.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.messages import BaseMessage

from langchain_localllm._core.base.chat import ChatDelta, LocalChatModel
from langchain_localllm._core.server.exchange import AnswerReader, ReadThrough, ServerModel, ServerRequest
from langchain_localllm._core.tools.calling import ToolRequest, new_call_id, tool_request
from langchain_localllm.errors import MalformedResponseError

__all__ = ["ForcedCallReader", "ServerChatModel", "server_call_chunk"]


class ServerChatModel(ServerModel, LocalChatModel):
    """Base of the chat models that call a local model server over HTTP."""

    # --- what subclasses provide ---------------------------------------------------------

    def _build_request(
        self, messages: list[BaseMessage], stop: list[str], kwargs: dict[str, Any], tools: ToolRequest
    ) -> ServerRequest:
        """The request for ``messages``; ``tools`` is what the call asked of the tool layer."""
        raise NotImplementedError

    def _new_reader(self, request: ServerRequest) -> AnswerReader[ChatDelta]:
        """A fresh reader of the server's answer to ``request``."""
        raise NotImplementedError

    # --- the pipeline ------------------------------------------------------------------------

    def _chat_exchange(
        self, messages: list[BaseMessage], stop: list[str], kwargs: dict[str, Any]
    ) -> tuple[ServerRequest, AnswerReader[ChatDelta]]:
        tools = tool_request(kwargs)
        request = self._build_request(messages, stop, kwargs, tools)
        reader = self._new_reader(request)
        if tools.forced_tools:
            reader = ForcedCallReader(reader, parallel=tools.parallel)
        return request, reader

    def _iter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> Iterator[ChatDelta]:
        return self._exchange(*self._chat_exchange(messages, stop, kwargs))

    async def _aiter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> AsyncIterator[ChatDelta]:
        await self._aprepare()
        async for delta in self._aexchange(*self._chat_exchange(messages, stop, kwargs)):
            yield delta


def server_call_chunk(name: Any, arguments: Any, call_id: Any, index: Any, url: str) -> dict[str, Any]:
    """A tool call the server parsed itself, as a LangChain tool-call chunk, its fields checked.

    ``arguments`` is JSON text (or a fragment of it, when the server streams a call in pieces);
    a server that sends them parsed (an object) gets them written as JSON.

    Raises:
        MalformedResponseError: a name, id or index of the wrong type, arguments neither text nor JSON.
    """
    if isinstance(arguments, dict | list):
        arguments = json.dumps(arguments, ensure_ascii=False)
    wrong = [
        f"{field} is {type(value).__name__}"
        for field, value, kinds in (
            ("name", name, (str, type(None))),
            ("arguments", arguments, (str, type(None))),
            ("id", call_id, (str, type(None))),
            ("index", index, (int,)),
        )
        if not isinstance(value, kinds) or isinstance(value, bool)
    ]
    if wrong:
        msg = (
            f"{url} sent a tool call that cannot be read ({', '.join(wrong)}; expected a text name, "
            "id and arguments, and an integer index)."
        )
        raise MalformedResponseError(msg, url=url)
    return {"type": "tool_call_chunk", "name": name, "args": arguments, "id": call_id, "index": index}


_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')
_HEAD_LIMIT = 4096
"""Most characters before a forced call's ``"arguments":`` that are searched while streaming
(a call starts with its name; an answer that does not is read whole when it ends)."""
_ARGUMENTS = re.compile(r'"arguments"\s*:\s*')


class ForcedCallReader(ReadThrough[ChatDelta, ChatDelta]):
    """Reads an answer constrained to ``forced_call_schema`` as tool-call chunks.

    Wraps the server's own reader: reasoning and the last delta (usage, timings) pass through;
    the answer's text -- the call as JSON -- becomes ``tool_call_chunks`` with ids (finish
    reason ``tool_calls``). One call streams: its name and id as soon as ``"arguments":`` is
    reached, then the arguments' JSON as it arrives. Parallel calls (an array) are given when
    the answer is complete. An answer cut short (``max_tokens``) keeps the text it has: the
    tool's name and the arguments' JSON prefix, with finish reason ``length``.
    """

    def __init__(self, inner: AnswerReader[ChatDelta], *, parallel: bool = False) -> None:
        super().__init__(inner)
        self.parallel = parallel
        self.parts: list[str] = []  # the answer's text, joined once at the end
        self.head = ""  # the text before the streamed call's arguments, while they are looked for
        self.streaming = not parallel  # False once the call is known to come whole (or never)
        self.args_found = False
        self.depth = 0
        self.in_string = self.escaped = self.args_done = False

    def convert(self, delta: ChatDelta) -> ChatDelta | None:
        self.parts.append(delta.text)
        chunks = self._streamed(delta.text) if self.streaming else []
        delta.text = ""
        if delta.is_last:
            if not self.args_found:
                chunks = self._chunks()
            if delta.finish_reason == "stop":
                delta.finish_reason = "tool_calls"
        if chunks:
            delta.extra = {**delta.extra, "tool_call_chunks": chunks}
        return delta if delta.is_last or delta.reasoning or chunks else None

    def _streamed(self, piece: str) -> list[dict[str, Any]]:
        """The chunks of one call that ``piece`` (the next text of the answer) adds."""
        name = None
        if not self.args_found:
            self.head += piece
            found = _NAME.search(self.head)
            arguments = _ARGUMENTS.search(self.head)
            if found is None or arguments is None:
                self.streaming = len(self.head) <= _HEAD_LIMIT  # else: read whole at the end
                return []
            self.args_found = True
            name = json.loads(f'"{found.group(1)}"')
            piece, self.head = self.head[arguments.end() :], ""
        end = 0
        while end < len(piece) and not self.args_done:
            self._scan(piece[end])
            end += 1
        if name is not None:  # the call's first chunk: its name, id and the arguments so far
            return [_chunk(name, piece[:end])]
        if end == 0:
            return []
        return [{"type": "tool_call_chunk", "name": None, "args": piece[:end], "id": None, "index": 0}]

    def _scan(self, char: str) -> None:
        if self.in_string:
            if self.escaped:
                self.escaped = False
            elif char == "\\":
                self.escaped = True
            elif char == '"':
                self.in_string = False
        elif char == '"':
            self.in_string = True
        elif char in "{[":
            self.depth += 1
        elif char in "}]":
            self.depth -= 1
            self.args_done = self.depth == 0

    def _chunks(self) -> list[dict[str, Any]]:
        """The chunks of the whole answer (parallel calls, or a call that never reached its arguments)."""
        text = "".join(self.parts)
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
        calls = parsed if isinstance(parsed, list) else [parsed]
        if not calls or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in calls):
            return [_cut_call(text)]
        return [
            _chunk(call["name"], json.dumps(call.get("arguments", {}), ensure_ascii=False), index)
            for index, call in enumerate(calls)
        ]


def _chunk(name: str | None, args: str, index: int = 0) -> dict[str, Any]:
    return {"type": "tool_call_chunk", "name": name, "args": args, "id": new_call_id(), "index": index}


def _cut_call(text: str) -> dict[str, Any]:
    """The chunk of an answer cut short: the tool's name if it was written, and the raw
    arguments text (LangChain reads a JSON prefix as it does any streamed call cut short; the
    finish reason ``length`` says so)."""
    name = _NAME.search(text)
    arguments = _ARGUMENTS.search(text)
    return _chunk(name.group(1) if name else None, text[arguments.end() :] if arguments else text)
