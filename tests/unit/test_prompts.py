"""Prompt-format registry, detection (template, name, cache), sandboxing and selectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import SecurityError
from langchain_core.language_models import FakeListLLM
from langchain_core.prompts import PromptTemplate

from langchain_localllm.errors import ChatTemplateError, InvalidParameterError, LocalLLMError
from langchain_localllm.prompts import (
    FORMATS,
    ConditionalPromptSelector,
    clear_prompt_format_cache,
    format_from_chat_template,
    format_from_model_name,
    format_predicate,
    format_prompt,
    format_prompt_selector,
    get_chat_format,
    is_alpaca_format,
    is_base_model,
    is_chatml_format,
    is_gemma_format,
    is_llama2_format,
    is_llama3_format,
    is_mistral_format,
    is_phi3_format,
    is_plain_format,
    model_name_of,
    prompt_format,
    register_chat_format,
    render_chat_template,
)
from tests.fixtures.chat_templates import CHAT_TEMPLATES

pytestmark = pytest.mark.usefixtures("fresh_prompt_format_cache")

BUILT_IN = ["llama2", "llama3", "chatml", "mistral", "phi3", "gemma", "alpaca", "plain"]
PREDICATES = {
    "llama2": is_llama2_format,
    "llama3": is_llama3_format,
    "chatml": is_chatml_format,
    "mistral": is_mistral_format,
    "phi3": is_phi3_format,
    "gemma": is_gemma_format,
    "alpaca": is_alpaca_format,
    "plain": is_plain_format,
}

CASSETTES = Path(__file__).parent.parent / "cassettes" / "ollama"


def _recorded_go_template(cassette: str) -> str:
    """The Go ``template`` a real Ollama server returned from /api/show (a recording)."""
    import yaml

    recording = yaml.safe_load((CASSETTES / cassette).read_text())
    body = recording["interactions"][0]["response"]["body"]["string"]
    return str(json.loads(body)["template"])


class ModelLike:
    """Anything exposing what the backends expose: chat_template() and model_name."""

    def __init__(self, template: str | None = None, name: str | None = None, **attrs: Any) -> None:
        self.template = template
        self.calls = 0
        if name is not None:
            self.model_name = name
        for key, value in attrs.items():
            setattr(self, key, value)

    def chat_template(self) -> str | None:
        self.calls += 1
        return self.template


class NameOnly:
    """A third-party LLM that names its model but cannot report a chat template."""

    def __init__(self, name: str | None = None, **attrs: Any) -> None:
        if name is not None:
            self.model_name = name
        for key, value in attrs.items():
            setattr(self, key, value)


def test_all_built_in_formats_registered() -> None:
    assert set(BUILT_IN) <= set(FORMATS)


@pytest.mark.parametrize("name", sorted(CHAT_TEMPLATES))
def test_detects_real_jinja_chat_templates(name: str) -> None:
    assert format_from_chat_template(CHAT_TEMPLATES[name]) == name


def test_detects_a_real_ollama_go_template() -> None:
    template = _recorded_go_template("show_llama3.1.yaml")
    assert "{{- if" in template and "<|start_header_id|>" in template  # Go, not Jinja
    assert format_from_chat_template(template) == "llama3"


def test_markers_built_at_render_time_are_found_by_rendering() -> None:
    # No marker appears literally in the source; only the rendered text shows ChatML.
    template = (
        "{% for m in messages %}"
        "{{ '<|im_' ~ 'start|>' ~ m['role'] ~ '\\n' ~ m['content'] ~ '<|im_end|>\\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_' ~ 'start|>assistant\\n' }}{% endif %}"
    )
    assert "<|im_start|>" not in template
    assert format_from_chat_template(template) == "chatml"


def test_no_template_or_unknown_template() -> None:
    assert format_from_chat_template(None) is None
    assert format_from_chat_template("   ") is None
    assert format_from_chat_template("{{ messages[0]['content'] }}") is None


def test_templates_render_only_in_an_immutable_sandbox() -> None:
    escape = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(ChatTemplateError) as refused:
        render_chat_template(escape, [])
    assert isinstance(refused.value.__cause__, SecurityError)
    with pytest.raises(ChatTemplateError) as refused:
        render_chat_template(
            "{{ messages[0].update({'content': 'changed'}) }}", [{"role": "user", "content": "x"}]
        )
    assert isinstance(refused.value.__cause__, SecurityError)
    # Lists may grow (Kimi K2's template builds one), but only copies of the caller's data.
    messages = [{"role": "user", "content": "x"}]
    assert render_chat_template("{{ messages.pop() }}{{ messages | length }}", messages) == (
        "{'role': 'user', 'content': 'x'}0"
    )
    assert messages == [{"role": "user", "content": "x"}]
    # A hostile template does not break detection: it just matches nothing.
    assert format_from_chat_template(escape) is None


def test_raise_exception_in_template_falls_back_to_a_user_only_probe() -> None:
    # Gemma's template raises on a system message; the detector retries without one.
    rendered = render_chat_template(CHAT_TEMPLATES["gemma"], [{"role": "user", "content": "hi"}])
    assert rendered == "<s><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
    assert format_from_chat_template(CHAT_TEMPLATES["gemma"]) == "gemma"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("llama-2-7b-chat.Q4_K_M.gguf", "llama2"),
        ("llama2:13b-chat", "llama2"),
        ("codellama:7b-instruct", "llama2"),
        ("Meta-Llama-3-8B-Instruct.Q4_0.gguf", "llama3"),
        ("llama3.1:8b", "llama3"),
        ("mistral-7b-instruct-v0.2.Q4_K_M.gguf", "mistral"),
        ("mixtral:8x7b", "mistral"),
        ("qwen2.5:0.5b", "chatml"),
        ("openhermes-2.5-mistral-7b.Q4_K_M.gguf", "chatml"),
        ("Phi-3-mini-4k-instruct-q4.gguf", "phi3"),
        ("gemma:2b", "gemma"),
        ("alpaca-7b-native.gguf", "alpaca"),
        ("some-model", None),
        ("", None),
        (None, None),
    ],
)
def test_format_from_model_name(name: str | None, expected: str | None) -> None:
    assert format_from_model_name(name) == expected


def test_template_decides_for_models_that_report_one_the_name_for_others() -> None:
    assert prompt_format(ModelLike(CHAT_TEMPLATES["chatml"], name="llama-2-7b-chat")) == "chatml"
    # No chat template: a base model, whatever its name says (it does not know [INST]).
    base = ModelLike(None, name="llama-2-13b-chat")
    assert prompt_format(base) == "plain"
    assert is_base_model(base) is True
    assert base.calls == 1  # one detection, cached for both questions
    assert is_base_model(ModelLike(CHAT_TEMPLATES["chatml"], name="x")) is False
    # Ollama's pass-through template for base models.
    assert is_base_model(ModelLike("{{ .Prompt }}", name="gemma3:270m")) is True
    # Only the name is known: it decides, and the model is not known to be a base model.
    assert prompt_format(NameOnly("llama-2-13b-chat")) == "llama2"
    assert is_base_model(NameOnly("llama-2-13b-chat")) is False
    assert prompt_format(NameOnly("mystery")) == "plain"
    assert prompt_format(NameOnly(), default="chatml") == "chatml"


def test_any_langchain_llm_by_model_attributes() -> None:
    from langchain_ollama import OllamaLLM

    assert prompt_format(OllamaLLM(model="llama3:8b")) == "llama3"
    assert prompt_format(NameOnly(model_path="/models/mistral-7b-instruct.Q4_0.gguf")) == "mistral"
    assert prompt_format(NameOnly(model="gemma:7b")) == "gemma"
    assert prompt_format(FakeListLLM(responses=["x"])) == "plain"
    # A bound model (llm.bind(stop=...)) is looked through.
    assert prompt_format(OllamaLLM(model="phi3:mini").bind(stop=["x"])) == "phi3"


def test_model_name_of_prefers_model_name_and_uses_file_names() -> None:
    assert model_name_of(ModelLike(name="a", model="b")) == "a"
    assert model_name_of(ModelLike(model_path="/x/y/llama-2.gguf")) == "llama-2.gguf"
    assert model_name_of(object()) is None


def test_model_name_property_that_raises_is_skipped() -> None:
    class NotReady(ModelLike):
        @property
        def model_name(self) -> str:
            raise RuntimeError("no model yet")

    assert model_name_of(NotReady(model="qwen2:7b")) == "qwen2:7b"


def test_results_are_cached_per_model() -> None:
    first = ModelLike(CHAT_TEMPLATES["llama3"], name="m1")
    assert prompt_format(first) == "llama3"
    assert prompt_format(first) == "llama3"
    assert first.calls == 1
    # Another object for the same model hits the cache too.
    same = ModelLike(CHAT_TEMPLATES["llama3"], name="m1")
    assert prompt_format(same) == "llama3"
    assert same.calls == 0
    # A different model is detected on its own.
    other = ModelLike(CHAT_TEMPLATES["phi3"], name="m2")
    assert prompt_format(other) == "phi3"
    clear_prompt_format_cache()
    assert prompt_format(first) == "llama3"
    assert first.calls == 2


def test_same_name_at_different_servers_is_cached_apart() -> None:
    a = ModelLike(CHAT_TEMPLATES["chatml"], name="m", base_url="http://127.0.0.1:1")
    b = ModelLike(CHAT_TEMPLATES["gemma"], name="m", base_url="http://127.0.0.1:2")
    assert (prompt_format(a), prompt_format(b)) == ("chatml", "gemma")


def test_backend_errors_are_not_hidden() -> None:
    class Down(ModelLike):
        def chat_template(self) -> str | None:
            raise LocalLLMError("server down")

    with pytest.raises(LocalLLMError, match="server down"):
        prompt_format(Down(name="llama-2"))


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_predicate_is_true_for_its_format_only(name: str) -> None:
    llm = ModelLike(CHAT_TEMPLATES.get(name), name=f"unknown-{name}-model")
    truths = {fmt for fmt, predicate in PREDICATES.items() if predicate(llm)}
    assert truths == {name}


def test_predicates_have_readable_names() -> None:
    assert is_llama2_format.__name__ == "is_llama2_format"
    assert format_predicate("chatml").__name__ == "is_chatml_format"
    with pytest.raises(InvalidParameterError, match="Known formats"):
        format_predicate("llama9")


@pytest.mark.parametrize("name", ["llama2", "llama3", "chatml", "phi3", "alpaca"])
def test_format_prompt_equals_the_models_own_template_with_system(name: str) -> None:
    prompt = format_prompt(name, "Question: {question}", system="Be brief.")
    ours = prompt.format(question="Why?")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Question: Why?"}]
    assert ours == render_chat_template(CHAT_TEMPLATES[name], messages, bos_token="")


@pytest.mark.parametrize("name", ["gemma", "mistral"])
def test_format_prompt_equals_the_models_own_template_without_system(name: str) -> None:
    ours = format_prompt(name, "Question: {question}").format(question="Why?")
    messages = [{"role": "user", "content": "Question: Why?"}]
    assert ours == render_chat_template(CHAT_TEMPLATES[name], messages, bos_token="")


def test_llama2_prompt_keeps_sys_inside_inst() -> None:
    text = format_prompt("llama2", "{question}", system="You are helpful.").format(question="Q?")
    assert text == "[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nQ? [/INST]"
    assert text.index("[INST]") < text.index("<<SYS>>") < text.index("<</SYS>>") < text.index("[/INST]")


def test_format_prompt_keeps_input_variables() -> None:
    prompt = format_prompt("chatml", "Summarise {text} in {words} words")
    assert isinstance(prompt, PromptTemplate)
    assert sorted(prompt.input_variables) == ["text", "words"]


def test_unknown_format_is_a_typed_error() -> None:
    with pytest.raises(InvalidParameterError, match=r"Unknown prompt format 'nope'.*llama2") as info:
        get_chat_format("nope")
    assert isinstance(info.value, ValueError)


def test_register_a_new_format_in_one_place() -> None:
    @register_chat_format(
        "vicuna", template_markers=("ASSISTANT:",), name_patterns=(r"vicuna",), stop=("USER:",), priority=45
    )
    def vicuna() -> str:
        return (
            "{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
            "{% else %}{{ m['role'].upper() }}: {{ m['content'] }}\n{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
        )

    try:
        assert prompt_format(NameOnly("vicuna-13b-v1.5")) == "vicuna"
        assert format_predicate("vicuna")(ModelLike("{{ 'USER: x ASSISTANT:' }}", name="x")) is True
        assert format_prompt("vicuna", "{q}", system="S").format(q="hi") == "S\n\nUSER: hi\nASSISTANT:"
        assert get_chat_format("vicuna").stop == ("USER:",)
    finally:
        del FORMATS["vicuna"]


def test_selector_is_classic_compatible() -> None:
    default = PromptTemplate.from_template("plain {question}")
    llama = format_prompt("llama2", "{question}")
    ours = ConditionalPromptSelector(default_prompt=default, conditionals=[(is_llama2_format, llama)])
    assert ours.get_prompt(NameOnly("llama-2-7b-chat")) is llama
    assert ours.get_prompt(NameOnly("qwen2")) is default
    # langchain-classic's own selector with our predicates: tests/integration/test_prompt_format.py


def test_format_prompt_selector_has_a_prompt_per_format() -> None:
    selector = format_prompt_selector("{question}", system="S")
    for name in BUILT_IN:
        llm = ModelLike(CHAT_TEMPLATES.get(name), name=f"x-{name}")
        expected = format_prompt(name, "{question}", system="S").format(question="q")
        assert selector.get_prompt(llm).format(question="q") == expected


def test_registering_a_name_twice_is_an_error_unless_overwrite() -> None:
    from langchain_localllm.prompts import get_chat_format, register_chat_format

    template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    register_chat_format("twice", template, stop=("A",))
    try:
        with pytest.raises(InvalidParameterError, match="already registered.*overwrite=True"):
            register_chat_format("twice", template, stop=("B",))
        assert get_chat_format("twice").stop == ("A",)
        register_chat_format("twice", template, stop=("B",), overwrite=True)
        assert get_chat_format("twice").stop == ("B",)
        with pytest.raises(InvalidParameterError, match="already registered"):
            register_chat_format("chatml", template)  # the built-ins are protected too
    finally:
        del FORMATS["twice"]


def test_a_format_renders_whole_conversations_and_derives_the_single_turn() -> None:
    from langchain_localllm.prompts import get_chat_format

    chatml = get_chat_format("chatml")
    conversation = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U1"},
        {"role": "assistant", "content": "A1"},
        {"role": "tool", "content": "T"},
        {"role": "user", "content": "U2"},
    ]
    assert chatml.render_messages(conversation) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
        "<|im_start|>tool\nT<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n"
    )
    assert chatml.render("{question}", system="S") == chatml.render_messages(
        [*conversation[:1], {"role": "user", "content": "{question}"}]
    )
