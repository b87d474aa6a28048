"""The shared LocalLLM behaviour, on a fake runtime (no model needed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core._api import LangChainDeprecationWarning
from langchain_core.callbacks import CallbackManager
from langchain_core.outputs import GenerationChunk

from langchain_localllm import InvalidParameterError, LlamaCpp, LocalLLMError
from langchain_localllm._core.base.llm import LocalLLM
from tests.fixtures.runs import LLMEvents as Tokens


class Echo(LocalLLM):
    """Streams the prompt's words back, then fails if asked to."""

    fail_after: int | None = None
    temperature: float = 0.5

    @property
    def _llm_type(self) -> str:
        return "echo"

    @property
    def model_name(self) -> str:
        return "echo"

    def _iter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> Iterator[GenerationChunk]:
        words = prompt.split()
        for i, word in enumerate(words):
            if self.fail_after is not None and i == self.fail_after:
                raise LocalLLMError("runtime failed")
            yield GenerationChunk(text=word + " ")
        n = len(words)
        info = {
            "finish_reason": "stop",
            "usage": {"prompt_tokens": n, "completion_tokens": n, "total_tokens": 2 * n},
        }
        yield GenerationChunk(text="", generation_info={**info, "stops": stop})


def test_generate_aggregates_the_stream_and_usage() -> None:
    result = Echo().generate(["a b c", "d e"])
    assert [g[0].text for g in result.generations] == ["a b c ", "d e "]
    assert result.generations[0][0].generation_info["finish_reason"] == "stop"
    assert result.llm_output == {
        "token_usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
        "model_name": "echo",
    }


def test_instance_and_call_stops_are_combined_in_order() -> None:
    llm = Echo(stop=["x", "y"])
    info = llm.generate(["a"], stop=["y", "z"]).generations[0][0].generation_info
    assert info["stops"] == ["x", "y", "z"]


def test_callback_manager_still_streams_with_a_deprecation_warning() -> None:
    handler = Tokens()
    with pytest.warns(LangChainDeprecationWarning, match="callbacks="):
        llm = Echo(callback_manager=CallbackManager([handler]))
    assert llm.invoke("one two") == "one two "
    assert handler.tokens == ["one ", "two "]


def test_error_mid_stream_keeps_what_was_delivered() -> None:
    handler = Tokens()
    with pytest.raises(LocalLLMError) as caught:
        Echo(fail_after=2).invoke("a b c d", config={"callbacks": [handler]})
    assert caught.value.partial_text == "a b "
    assert handler.tokens == ["a ", "b "]


async def test_async_error_mid_stream_keeps_what_was_delivered() -> None:
    received = []
    with pytest.raises(LocalLLMError) as caught:
        async for token in Echo(fail_after=1).astream("a b c"):
            received.append(token)
    assert received == ["a "]
    assert caught.value.partial_text == "a "


def test_unknown_argument_suggests_the_right_one() -> None:
    with pytest.raises(
        InvalidParameterError, match="unknown argument 'temprature'; did you mean 'temperature'"
    ):
        LlamaCpp(model_path="m.gguf", temprature=0.2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": -0.1}, "temperature=-0.1 is out of range"),
        ({"max_tokens": 0}, "max_tokens=0 is out of range"),
        ({"n_ctx": -5}, "n_ctx=-5 is out of range"),
        ({"top_p": 1.5}, "top_p=1.5 is out of range"),
        ({"n_batch": 0}, "n_batch=0"),
    ],
)
def test_bad_values_are_typed_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match) as caught:
        LlamaCpp(model_path="m.gguf", **kwargs)
    assert isinstance(caught.value, ValueError)


def test_bad_values_per_call_are_typed_errors() -> None:
    with pytest.raises(InvalidParameterError, match="temperature"):
        Echo().invoke("a", temperature=-1)


def test_wrong_type_is_a_typed_error() -> None:
    with pytest.raises(InvalidParameterError, match="n_ctx"):
        LlamaCpp(model_path="m.gguf", n_ctx="big")
