"""The `localllm` parser, options mapping and chat prompt building (no runtime)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.outputs import GenerationChunk

from langchain_localllm._core.base.llm import LocalLLM
from langchain_localllm.cli.chat import Conversation
from langchain_localllm.cli.llm_factory import _sampling_kwargs
from langchain_localllm.cli.main import build_parser, main
from tests.fixtures.chat_templates import CHAT_TEMPLATES


class TemplatedLLM(LocalLLM):
    template: str | None = None
    name: str = "some-model"

    @property
    def _llm_type(self) -> str:
        return "templated"

    @property
    def model_name(self) -> str:
        return self.name

    def chat_template(self) -> str | None:
        return self.template

    def _iter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> Iterator[GenerationChunk]:
        yield GenerationChunk(text="ok", generation_info={})


MODEL_OPTIONS = ["--backend", "ollama", "--model", "m", "--base-url", "http://127.0.0.1:1"]
MODEL_OPTIONS += ["--max-tokens", "5", "--temperature", "0.5", "--seed", "3", "--timings"]


def test_every_command_takes_the_model_options() -> None:
    parser = build_parser()
    for argv in (
        ["run", "hi"],
        ["chat"],
        ["search-queries", "q"],
        ["summarize", "f.txt"],
        ["rag", "index", "docs"],
        ["rag", "ask", "q"],
    ):
        args = parser.parse_args([*argv, *MODEL_OPTIONS])
        assert (args.backend, args.model, args.max_tokens, args.temperature, args.seed, args.timings) == (
            "ollama",
            "m",
            5,
            0.5,
            3,
            True,
        )


def test_unknown_backend_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--backend", "vllm", "hi"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'vllm'" in err
    assert "llamacpp" in err


def test_options_map_to_each_backends_field_names() -> None:
    from langchain_localllm.gpt4all.llms import GPT4All
    from langchain_localllm.llamacpp.llms import LlamaCpp
    from langchain_localllm.llamafile.llms import Llamafile

    args = argparse.Namespace(max_tokens=7, temperature=0.1, seed=4)
    assert _sampling_kwargs(LlamaCpp, args) == {"max_tokens": 7, "temperature": 0.1, "seed": 4}
    assert _sampling_kwargs(GPT4All, args) == {"max_tokens": 7, "temp": 0.1}  # no seed in gpt4all
    assert _sampling_kwargs(Llamafile, args) == {"n_predict": 7, "temperature": 0.1, "seed": 4}


def test_chat_prompt_uses_the_models_own_template_with_history() -> None:
    conversation = Conversation(TemplatedLLM(template=CHAT_TEMPLATES["chatml"]), system="Be brief.")
    first = conversation.prompt("Hello")
    assert first == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    )
    conversation.add("Hello", " Hi there. ")
    second = conversation.prompt("And you?")
    assert second.startswith(first)
    assert second.endswith(
        "Hi there.<|im_end|>\n<|im_start|>user\nAnd you?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert conversation.stop == []


def test_a_model_without_a_template_is_a_base_model_whatever_its_name() -> None:
    # The file is named like a Llama-2 chat model but has no chat template: a base model,
    # which does not know [INST]; the format comes from the name only when the template agrees.
    conversation = Conversation(TemplatedLLM(name="llama-2-7b-chat.Q4_K_M.gguf"))
    assert conversation.prompt("Hello") == "User: Hello\nAssistant:"
    confirmed = TemplatedLLM(name="llama-2-7b-chat.Q4_K_M.gguf", template=CHAT_TEMPLATES["llama2"])
    assert Conversation(confirmed).prompt("Hello").startswith("[INST] Hello [/INST]")


def test_chat_prompt_without_any_format_is_a_plain_transcript() -> None:
    conversation = Conversation(TemplatedLLM(name="mystery"))
    conversation.add("Hi", "Hello!")
    assert conversation.prompt("Bye") == "User: Hi\nAssistant: Hello!\nUser: Bye\nAssistant:"
    assert conversation.stop == ["\nUser:"]
