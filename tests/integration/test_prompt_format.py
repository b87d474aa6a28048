"""prompt_format on real backends: generated GGUF models with real chat templates."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_classic.chains import prompt_selector as classic
from langchain_core.language_models import FakeListLLM
from langchain_core.prompts import PromptTemplate

from langchain_localllm import GPT4All, LlamaCpp
from langchain_localllm.demo_models import write_tiny_model
from langchain_localllm.prompts import (
    ConditionalPromptSelector,
    format_prompt,
    is_base_model,
    is_chatml_format,
    is_llama2_format,
    prompt_format,
)
from tests.fixtures.chat_templates import CHAT_TEMPLATES

pytestmark = pytest.mark.usefixtures("fresh_prompt_format_cache")


FORMATS = sorted(CHAT_TEMPLATES)


@pytest.fixture(scope="module")
def neutral_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str | None, Path]:
    """One model per chat template, with file names that say nothing about the format."""
    folder = tmp_path_factory.mktemp("neutral-models")
    names = [*FORMATS, None]
    return {fmt: write_tiny_model(folder / f"model-{i}.gguf", chat_format=fmt) for i, fmt in enumerate(names)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_llamacpp_format_from_the_gguf_chat_template(
    neutral_models: dict[str | None, Path], fmt: str
) -> None:
    llm = LlamaCpp(model_path=str(neutral_models[fmt]), verbose=False)
    assert llm.chat_template() == CHAT_TEMPLATES[fmt]
    assert prompt_format(llm) == fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_gpt4all_format_from_the_gguf_chat_template(neutral_models: dict[str | None, Path], fmt: str) -> None:
    llm = GPT4All(model=str(neutral_models[fmt]))
    assert prompt_format(llm) == fmt


def test_model_without_template_is_a_base_model_whatever_its_name(
    neutral_models: dict[str | None, Path], tmp_path: Path
) -> None:
    assert prompt_format(LlamaCpp(model_path=str(neutral_models[None]), verbose=False)) == "plain"
    # Named like Mistral Instruct, but no chat template in the file: a base model, which does
    # not know [INST] (the name used to decide: "mistral").
    named = write_tiny_model(tmp_path / "mistral-7b-instruct-v0.2.Q4_K_M.gguf", chat_format=None)
    for llm in (LlamaCpp(model_path=str(named), verbose=False), GPT4All(model=str(named))):
        assert prompt_format(llm) == "plain"
        assert is_base_model(llm)
    assert not is_base_model(LlamaCpp(model_path=str(neutral_models["mistral"]), verbose=False))


def test_template_wins_over_a_misleading_file_name(tmp_path: Path) -> None:
    path = write_tiny_model(tmp_path / "llama-2-7b-chat.gguf", chat_format="chatml")
    assert prompt_format(LlamaCpp(model_path=str(path), verbose=False)) == "chatml"


def test_same_file_name_in_two_folders_is_two_models(tmp_path: Path) -> None:
    a = write_tiny_model(tmp_path / "a" / "model.gguf", chat_format="llama3")
    b = write_tiny_model(tmp_path / "b" / "model.gguf", chat_format="gemma")
    assert prompt_format(LlamaCpp(model_path=str(a), verbose=False)) == "llama3"
    assert prompt_format(LlamaCpp(model_path=str(b), verbose=False)) == "gemma"


def test_detection_does_not_load_the_model(neutral_models: dict[str | None, Path]) -> None:
    from langchain_localllm._inprocess.model_cache import MODEL_CACHE

    before = len(MODEL_CACHE)
    llm = LlamaCpp(model_path=str(neutral_models["phi3"]), n_ctx=321, verbose=False)
    assert prompt_format(llm) == "phi3"
    assert len(MODEL_CACHE) == before


def test_classic_selector_uses_our_predicates_by_model_name() -> None:
    default = PromptTemplate.from_template("plain {question}")
    llama = format_prompt("llama2", "{question}")
    theirs = classic.ConditionalPromptSelector(
        default_prompt=default, conditionals=[(is_llama2_format, llama)]
    )
    assert theirs.get_prompt(FakeListLLM(responses=["x"])) is default

    class NamedFake(FakeListLLM):
        model_name: str = "llama-2-7b-chat"

    assert theirs.get_prompt(NamedFake(responses=["x"])) is llama


def test_selectors_work_with_real_backends(neutral_models: dict[str | None, Path]) -> None:
    default = PromptTemplate.from_template("{question}")
    llama2 = format_prompt("llama2", "{question}")
    chatml = format_prompt("chatml", "{question}")
    llama2_llm = LlamaCpp(model_path=str(neutral_models["llama2"]), verbose=False)
    chatml_llm = LlamaCpp(model_path=str(neutral_models["chatml"]), verbose=False)
    gpt4all_llm = GPT4All(model=str(neutral_models["chatml"]))

    for cls in (ConditionalPromptSelector, classic.ConditionalPromptSelector):
        by_format = cls(
            default_prompt=default, conditionals=[(is_llama2_format, llama2), (is_chatml_format, chatml)]
        )
        assert by_format.get_prompt(llama2_llm) is llama2
        assert by_format.get_prompt(chatml_llm) is chatml
        assert by_format.get_prompt(gpt4all_llm) is chatml
        # The classic recipe, by Python class, keeps working with our classes.
        by_class = cls(default_prompt=default, conditionals=[(lambda llm: isinstance(llm, LlamaCpp), llama2)])
        assert by_class.get_prompt(chatml_llm) is llama2
        assert by_class.get_prompt(gpt4all_llm) is default
