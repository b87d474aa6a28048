"""The shared chat-model base: message building, stop merging, errors, reasoning split.

A scripted subclass replays deltas the way a runtime reports them, so the protocol
code (written once for sync and async) is checked on its own; the chat models of each
runtime are tested against the real runtimes in tests/integration.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core import exceptions as lc_exceptions
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_localllm._core.base.chat import (
    ChatDelta,
    LocalChatModel,
    ReasoningSplitter,
    image_base64,
    messages_to_dicts,
)
from langchain_localllm.errors import (
    ContextLengthExceededError,
    InvalidMessagesError,
    InvalidParameterError,
    ServerResponseError,
    ServerTimeoutError,
    ServerUnreachableError,
    StreamInterruptedError,
)


class ScriptedChat(LocalChatModel):
    """Replays ``script`` and records the stop sequences it was given."""

    script: list[ChatDelta]
    fail_after: int | None = None
    seen_stops: list[list[str]] = []

    @property
    def model_name(self) -> str:
        return "scripted"

    def _iter_deltas(self, messages: Any, stop: list[str], **kwargs: Any) -> Iterator[ChatDelta]:
        self.seen_stops.append(stop)
        for i, delta in enumerate(self.script):
            if self.fail_after is not None and i == self.fail_after:
                raise StreamInterruptedError("connection dropped")
            yield delta


SCRIPT = [
    ChatDelta(reasoning="Let me think. "),
    ChatDelta(reasoning="Done."),
    ChatDelta(text="Hello"),
    ChatDelta(text=" world"),
    ChatDelta(finish_reason="stop", usage=(7, 3), timings={"predicted_n": 3}),
]


def test_invoke_equals_the_sum_of_the_stream() -> None:
    model = ScriptedChat(script=SCRIPT)
    chunks = list(model.stream("hi"))
    summed = chunks[0]
    for chunk in chunks[1:]:
        summed += chunk
    message = model.invoke("hi")
    assert message.content == summed.content == "Hello world"
    assert (
        message.additional_kwargs == summed.additional_kwargs == {"reasoning_content": "Let me think. Done."}
    )
    assert message.usage_metadata == summed.usage_metadata
    assert message.usage_metadata == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.response_metadata["model_provider"] == "localllm"
    assert message.response_metadata["timings"] == {"predicted_n": 3}
    assert chunks[-1].usage_metadata is not None and all(c.usage_metadata is None for c in chunks[:-1])
    assert message.id is not None


def test_reasoning_is_a_standard_content_block() -> None:
    message = ScriptedChat(script=SCRIPT).invoke("hi")
    blocks = message.content_blocks
    assert blocks[0] == {"type": "reasoning", "reasoning": "Let me think. Done."}
    assert blocks[1]["type"] == "text" and blocks[1]["text"] == "Hello world"
    v1 = ScriptedChat(script=SCRIPT, output_version="v1").invoke("hi")
    assert isinstance(v1.content, list)
    assert [b["type"] for b in v1.content] == ["reasoning", "text"]


def test_async_matches_sync() -> None:
    model = ScriptedChat(script=SCRIPT)

    async def run() -> tuple[AIMessage, list[str]]:
        message = await model.ainvoke("hi")
        pieces = [str(c.content) async for c in model.astream("hi")]
        return message, pieces

    message, pieces = asyncio.run(run())
    assert message.content == "".join(pieces) == "Hello world"
    assert message.additional_kwargs["reasoning_content"] == "Let me think. Done."


def test_instance_and_call_stop_sequences_are_merged() -> None:
    model = ScriptedChat(script=SCRIPT, stop=["A", "B"], seen_stops=[])
    model.invoke("hi", stop=["B", "C"])
    assert model.seen_stops == [["A", "B", "C"]]


def test_error_keeps_what_was_streamed() -> None:
    model = ScriptedChat(script=SCRIPT, fail_after=4)
    with pytest.raises(StreamInterruptedError) as caught:
        model.invoke("hi")
    assert caught.value.partial_text == "Hello world"

    async def run() -> None:
        await model.ainvoke("hi")

    with pytest.raises(StreamInterruptedError) as caught_async:
        asyncio.run(run())
    assert caught_async.value.partial_text == "Hello world"


def test_empty_message_list_is_a_typed_error() -> None:
    with pytest.raises(InvalidMessagesError, match="empty message list"):
        ScriptedChat(script=SCRIPT).invoke([])


def test_errors_belong_to_langchain_cores_model_error_family() -> None:
    assert isinstance(ContextLengthExceededError("x"), lc_exceptions.ContextOverflowError)
    assert not ContextLengthExceededError("x").is_retryable
    assert isinstance(ServerUnreachableError("x"), lc_exceptions.ModelConnectionError)
    assert ServerUnreachableError("x").is_retryable
    assert isinstance(ServerTimeoutError("x"), lc_exceptions.ModelTimeoutError)
    assert isinstance(InvalidParameterError("x"), lc_exceptions.ModelInvalidRequestError)
    assert not InvalidMessagesError("x").is_retryable
    assert ServerResponseError("x", status_code=503).is_retryable
    assert not ServerResponseError("x", status_code=401).is_retryable
    assert isinstance(InvalidMessagesError("x"), ValueError)


def test_messages_to_dicts_openai_shape() -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    messages = [
        SystemMessage("Be brief."),
        HumanMessage(
            content=[
                {"type": "text", "text": "What is this?"},
                {"type": "image", "base64": png, "mime_type": "image/png"},
            ]
        ),
        AIMessage(
            "",
            tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "call_1"}],
            additional_kwargs={"reasoning_content": "Need a lookup."},
        ),
        ToolMessage("42", tool_call_id="call_1"),
    ]
    out = messages_to_dicts(messages)
    assert out[0] == {"role": "system", "content": "Be brief."}
    assert out[1]["role"] == "user"
    parts = out[1]["content"]
    assert parts[0] == {"type": "text", "text": "What is this?"}
    assert image_base64(parts[1]) == png
    assert out[2]["role"] == "assistant" and out[2]["content"] == ""
    assert out[2]["reasoning_content"] == "Need a lookup."
    call = out[2]["tool_calls"][0]
    assert call["id"] == "call_1" and call["function"]["name"] == "lookup"
    assert call["function"]["arguments"] == '{"q": "x"}'
    assert out[3] == {"role": "tool", "content": "42", "tool_call_id": "call_1"}


def test_remote_image_urls_are_refused() -> None:
    with pytest.raises(InvalidMessagesError, match="base64"):
        image_base64({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}})


def _split(pieces: list[str], **kwargs: Any) -> tuple[str, str]:
    splitter = ReasoningSplitter(**kwargs)
    reasoning, answer = [], []
    for piece in pieces:
        r, a = splitter.feed(piece)
        reasoning.append(r)
        answer.append(a)
    r, a = splitter.flush()
    return "".join(reasoning) + r, "".join(answer) + a


@pytest.mark.parametrize("size", [1, 2, 3, 5, 100])
def test_reasoning_splitter_any_chunking(size: int) -> None:
    text = "<think>\nI should greet.\n</think>\n\nHello <b>there</b>"
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    assert _split(pieces) == ("\nI should greet.\n", "Hello <b>there</b>")


def test_reasoning_splitter_starting_inside() -> None:
    # DeepSeek R1 / Qwen3 templates open <think> in the prompt: generation starts inside it.
    assert _split(["Hmm", ", ok.</th", "ink>\n\nAnswer"], inside=True) == ("Hmm, ok.", "Answer")


def test_reasoning_splitter_without_reasoning_and_unfinished_thoughts() -> None:
    assert _split(["Plain ", "answer <th"]) == ("", "Plain answer <th")
    assert _split(["<think>never", " ends"]) == ("never ends", "")


def test_reasoning_splitter_custom_markers() -> None:
    assert _split(["[THINK]x[/THINK]y"], start="[THINK]", end="[/THINK]") == ("x", "y")
