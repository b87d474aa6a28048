"""The chat models against the real runtimes: templates, prompt reuse, reasoning, bad input.

``ChatLlamaCpp`` / ``ChatGPT4All`` run generated tiny models in process; ``ChatOllama``
talks to the Ollama emulator (real tokens through ``/api/chat``).
"""

from __future__ import annotations

import base64
import warnings
from pathlib import Path
from typing import Any

import pytest
from langchain_core import exceptions as lc_exceptions
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_localllm import (
    ChatGPT4All,
    ChatLlamaCpp,
    ChatOllama,
    ContextLengthExceededError,
    InvalidMessagesError,
    MissingChatTemplateError,
    UnsupportedParameterError,
    UnsupportedParameterWarning,
)
from langchain_localllm._core.inprocess_chat import deltas_from_text
from langchain_localllm.demo_models import write_tiny_model
from langchain_localllm.prompts import get_chat_format
from tests.fixtures.models import tiny_model
from tests.support.ollama_server import OllamaTestServer

TEMPLATES = Path(__file__).parent.parent / "data" / "chat_templates"
GREEDY = {"temperature": 0.0, "n_threads": 1}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image").decode()


def _chat(path: Path, **kwargs: Any) -> ChatLlamaCpp:
    return ChatLlamaCpp(model_path=str(path), **{"max_tokens": 8, **GREEDY, **kwargs})


# --- prompt layout -------------------------------------------------------------------


def test_the_models_own_template_lays_out_the_conversation() -> None:
    chat = _chat(tiny_model("chatml"))
    messages = [SystemMessage("Be brief."), HumanMessage("Hi"), AIMessage("Hello!"), HumanMessage("Bye")]
    prompt = chat._chat_prompt(messages, {})
    assert prompt.text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
    )
    assert prompt.stop == get_chat_format("chatml").stop  # the template's end-of-turn strings
    assert prompt.source == "the model's chat template"


def test_conversation_tokens_are_counted_as_the_model_sees_them() -> None:
    chat = _chat(tiny_model("chatml"))
    messages = [SystemMessage("Be brief."), HumanMessage("Hi")]
    laid_out = (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    # The count is the call's: the laid-out text, plus the BOS the runtime adds (issue 21).
    assert chat.get_num_tokens_from_messages(messages) == chat.get_num_tokens(laid_out) + 1
    assert chat.get_num_tokens(laid_out) < len(laid_out) / 2  # special tokens count as one each
    assert chat.invoke(messages).usage_metadata["input_tokens"] == chat.get_num_tokens_from_messages(messages)  # type: ignore[index]


def test_same_answer_in_process_whether_llama_cpp_or_gpt4all() -> None:
    path = tiny_model("chatml")
    messages = [SystemMessage("Be brief."), HumanMessage("Hello there")]
    by_llama = _chat(path, max_tokens=12).invoke(messages)
    by_gpt4all = ChatGPT4All(model=str(path), max_tokens=12, temp=0, n_threads=1).invoke(messages)
    assert by_llama.content  # the random model says something
    assert by_gpt4all.content == by_llama.content  # same prompt tokens, greedy: same text
    assert by_llama.usage_metadata is not None and by_llama.usage_metadata["output_tokens"] == 12
    assert by_llama.response_metadata["finish_reason"] == "length"


def test_a_model_without_template_uses_the_format_its_name_names(tmp_path: Path) -> None:
    path = write_tiny_model(tmp_path / "my-qwen-chat.gguf", chat_format=None)
    with pytest.warns(UserWarning, match="'chatml' format, chosen from the model's name"):
        answer = _chat(path).invoke("Hi")
    assert answer.response_metadata["finish_reason"] in ("stop", "length")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _chat(path, chat_format="chatml").invoke("Hi")  # chosen explicitly: no warning


def test_a_model_without_template_or_known_name_is_a_typed_error(tmp_path: Path) -> None:
    path = write_tiny_model(tmp_path / "mystery.gguf", chat_format=None)
    with pytest.raises(MissingChatTemplateError, match="chat_format=") as caught:
        _chat(path).invoke("Hi")
    assert isinstance(caught.value, lc_exceptions.ModelInvalidRequestError)
    with pytest.raises(MissingChatTemplateError):
        ChatGPT4All(model=str(path), n_threads=1).invoke("Hi")


def test_a_conversation_the_template_refuses_is_a_typed_error() -> None:
    # Llama 2's template demands alternating user/assistant turns, the user's first (two user
    # turns in a row are joined into one: issue 21; an assistant turn first cannot be mended).
    chat = _chat(tiny_model("llama2"))
    with pytest.raises(InvalidMessagesError, match="alternate"):
        chat.invoke([AIMessage("a"), HumanMessage("b")])


def test_a_template_without_system_role_gets_it_in_the_first_user_turn() -> None:
    chat = _chat(tiny_model("gemma"))
    prompt = chat._chat_prompt([SystemMessage("Be brief."), HumanMessage("Hi")], {})
    assert prompt.text == "<s><start_of_turn>user\nBe brief.\nHi<end_of_turn>\n<start_of_turn>model\n"


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ["llamacpp", "gpt4all"])
def test_images_to_a_text_only_runtime_are_refused(runtime: str) -> None:
    path = tiny_model("chatml")
    chat: Any = _chat(path) if runtime == "llamacpp" else ChatGPT4All(model=str(path), n_threads=1)
    message = HumanMessage(
        content=[
            {"type": "text", "text": "What is it?"},
            {"type": "image", "base64": PNG, "mime_type": "image/png"},
        ]
    )
    with pytest.raises(InvalidMessagesError, match="text-only"):
        chat.invoke([message])


def test_a_conversation_longer_than_the_context_is_a_typed_error() -> None:
    chat = _chat(tiny_model("chatml"), n_ctx=256)
    with pytest.raises(ContextLengthExceededError, match="n_ctx") as caught:
        chat.invoke([HumanMessage("the sun " * 300)])
    assert isinstance(caught.value, lc_exceptions.ContextOverflowError)
    assert not caught.value.is_retryable


@pytest.mark.parametrize("runtime", ["llamacpp", "gpt4all"])
def test_an_empty_message_list_is_a_typed_error(runtime: str) -> None:
    path = tiny_model("chatml")
    chat: Any = _chat(path) if runtime == "llamacpp" else ChatGPT4All(model=str(path), n_threads=1)
    with pytest.raises(InvalidMessagesError, match="empty message list"):
        chat.invoke([])


# --- conversations reuse the evaluated prompt -------------------------------------------


def test_second_turn_does_not_re_evaluate_the_history_even_after_another_conversation() -> None:
    chat = _chat(tiny_model("chatml"), n_ctx=2048)
    history: list[Any] = [SystemMessage("the sun and the moon " * 60), HumanMessage("Hello")]
    first = chat.invoke(history)
    first_evaluated = first.response_metadata["timings"]["prompt_n"]
    assert first_evaluated >= 300
    # Another conversation uses the same loaded model in between.
    chat.invoke([SystemMessage("a different system prompt " * 40), HumanMessage("x")])
    history += [first, HumanMessage("Tell me more")]
    second = chat.invoke(history)
    assert second.usage_metadata is not None
    assert second.usage_metadata["input_tokens"] > first_evaluated  # the whole history is the prompt
    assert second.response_metadata["timings"]["prompt_n"] < 40  # ...but only the new turn is evaluated


# --- reasoning ----------------------------------------------------------------------------


def _split(
    template: str, pieces: list[str], finish: str = "stop", **template_kwargs: Any
) -> tuple[str, str, bool]:
    """Render a real template on a tiny model, then split a scripted model output."""
    path = write_tiny_model(
        Path("/tmp") / f"reasoning-{abs(hash(template))}.gguf",
        chat_format=None,
        extra_metadata={"tokenizer.chat_template": template},
    )
    prompt = _chat(path)._chat_prompt([HumanMessage("2+2?")], {"chat_template_kwargs": template_kwargs})
    stream = [(p, None) for p in pieces] + [("", {"finish_reason": finish, "usage": {}})]
    deltas = list(deltas_from_text(iter(stream), prompt))
    return "".join(d.reasoning for d in deltas), "".join(d.text for d in deltas), prompt.starts_in_reasoning


def test_reasoning_split_deepseek_r1_opens_thinking_in_the_prompt() -> None:
    template = (TEMPLATES / "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja").read_text()
    reasoning, answer, inside = _split(template, ["The user adds", " two and two.\n</th", "ink>\n\nIt is 4."])
    assert inside  # the prompt ends with "<think>\n": generation starts inside the thoughts
    assert (reasoning, answer) == ("The user adds two and two.\n", "It is 4.")


def test_thinking_that_uses_the_whole_budget_says_so() -> None:
    template = (TEMPLATES / "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja").read_text()
    with pytest.warns(UserWarning, match="whole token budget"):
        reasoning, answer, _ = _split(template, ["Let me think about", " this for a long"], finish="length")
    assert (reasoning, answer) == ("Let me think about this for a long", "")


def test_reasoning_split_qwen3_with_and_without_thinking() -> None:
    template = (TEMPLATES / "Qwen-Qwen3-0.6B.jinja").read_text()
    output = ["<think>\nSimple", " sum.\n</think>\n\n", "4"]
    assert _split(template, output)[:2] == ("\nSimple sum.\n", "4")
    # enable_thinking=False: the template closes an empty thought block; the answer is all content.
    reasoning, answer, inside = _split(template, ["4"], enable_thinking=False)
    assert (reasoning, answer, inside) == ("", "4", False)


# --- Ollama ---------------------------------------------------------------------------------


def test_chat_ollama_accepts_every_argument_of_langchain_ollama() -> None:
    from langchain_ollama import ChatOllama as PeerChatOllama

    ours = set(ChatOllama.model_fields)
    missing = [name for name in PeerChatOllama.model_fields if name not in ours]
    assert missing == []
    with pytest.warns(UnsupportedParameterWarning, match="verify"):
        ChatOllama(model="m", client_kwargs={"verify": False, "headers": {"X-Test": "1"}})
    chat = ChatOllama(model="m", base_url=None, client_kwargs={"headers": {"X-Test": "1"}, "timeout": 5})
    assert chat._request_headers() == {"X-Test": "1"} and chat.timeout == 5


@pytest.mark.parametrize(
    ("reasoning", "think"), [(True, True), (False, False), ("high", "high"), (None, None)]
)
def test_chat_ollama_reasoning_is_sent_as_think(
    ollama_server: OllamaTestServer, reasoning: Any, think: Any
) -> None:
    chat = ChatOllama(
        model="tiny-chatml", base_url=ollama_server.base_url, reasoning=reasoning, num_predict=3
    )
    chat.invoke("Hi", stop=["zz"])
    method, path, body = ollama_server.requests[-1]
    assert (method, path) == ("POST", "/api/chat")
    assert body.get("think") == think and ("think" in body) == (think is not None)
    assert body["options"]["num_predict"] == 3 and body["options"]["stop"] == ["zz"]


def test_chat_ollama_sends_images_as_base64_and_tool_results(ollama_server: OllamaTestServer) -> None:
    chat = ChatOllama(model="tiny-chatml", base_url=ollama_server.base_url, num_predict=2)
    message = HumanMessage(
        content=[
            {"type": "text", "text": "What is it?"},
            {"type": "image", "base64": PNG, "mime_type": "image/png"},
        ]
    )
    with pytest.raises(Exception, match="does not support images"):  # the text-only model refuses
        chat.invoke([message])
    body = ollama_server.requests[-1][2]
    assert body["messages"] == [{"role": "user", "content": "What is it?", "images": [PNG]}]
    history = [
        HumanMessage("Weather?"),
        AIMessage("", tool_calls=[{"name": "weather", "args": {"city": "Paris"}, "id": "c1"}]),
        ToolMessage("sunny", tool_call_id="c1"),
    ]
    chat.invoke(history)
    sent = ollama_server.requests[-1][2]["messages"]
    assert sent[1]["tool_calls"] == [{"function": {"name": "weather", "arguments": {"city": "Paris"}}}]
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_call_id": "c1"}


def test_chat_ollama_streams_real_tokens_from_the_emulator(ollama_server: OllamaTestServer) -> None:
    chat = ChatOllama(model="tiny-chatml", base_url=ollama_server.base_url, num_predict=6, temperature=0)
    chunks = list(chat.stream([SystemMessage("Be brief."), HumanMessage("Hello there")]))
    text = "".join(str(c.content) for c in chunks)
    in_process = _chat(tiny_model("chatml"), max_tokens=6, n_ctx=512).invoke(
        [SystemMessage("Be brief."), HumanMessage("Hello there")]
    )
    assert text == in_process.content  # the emulator renders through the registry: same prompt
    assert chunks[-1].usage_metadata is not None and chunks[-1].usage_metadata["output_tokens"] == 6


def test_chat_ollama_knows_its_format_window_and_token_counts(ollama_server: OllamaTestServer) -> None:
    from langchain_localllm.prompts import prompt_format

    chat = ChatOllama(model="tiny-chatml", base_url=ollama_server.base_url)
    assert prompt_format(chat) == "chatml"  # from the server's /api/show, not the name
    assert chat.get_context_window() == 512
    assert (
        ChatOllama(model="tiny-chatml", base_url=ollama_server.base_url, num_ctx=300).get_context_window()
        == 300
    )
    assert chat.get_num_tokens("the sun and the moon") > 0
    with pytest.raises(UnsupportedParameterError, match="no tokenizer endpoint"):
        chat.get_token_ids("x")
