"""Hostile chat templates end in the typed error, fast and small; the caller's data never changes.

A chat template is code from a model file or a server. Every bomb of the red-team pass
(issue 20) and its kin (:data:`tests.support.hostile_templates.BOMBS`) is set off in a child
process with a hard timeout, which reports the error, the time to raise and the peak memory
it added; each must be a ``ChatTemplateLimitError`` naming the template's source, within its
time limit plus a margin, adding less than 100 MB. Without the bounds they run for hours,
allocate gigabytes or raise a raw ``RecursionError``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from langchain_localllm.errors import (
    ChatTemplateError,
    ChatTemplateLimitError,
    InvalidMessagesError,
    LocalLLMError,
)
from langchain_localllm.prompts import (
    FORMATS,
    ChatTemplateLimits,
    SourcedTemplate,
    format_from_chat_template,
    prompt_format,
    register_chat_format,
    render_chat_template,
)
from tests.fixtures.chat_templates import CHAT_TEMPLATES
from tests.support.hostile_templates import BOMBS, run_isolated, table

pytestmark = pytest.mark.usefixtures("fresh_prompt_format_cache")

SECONDS = 0.5  # the time limit the bombs get here (the default is 2 s)
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Any]:
    payloads = {
        name: {"template": template, "source": f"test bomb {name!r}", "limits": {"seconds": SECONDS}}
        for name, (template, _) in BOMBS.items()
    }
    found = run_isolated("render", payloads, timeout=60 + len(BOMBS) * 4 * SECONDS)
    print("\n" + table(found))  # the figures for the closing note (pytest -s)
    return found


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_each_bomb_is_the_typed_error_within_time_and_memory(name: str, outcomes: dict[str, Any]) -> None:
    outcome, limit = outcomes[name], BOMBS[name][1]
    assert (outcome["error"], outcome["limit"]) == ("ChatTemplateLimitError", limit), outcome
    assert outcome["source"] == f"test bomb {name!r}"
    assert f"test bomb {name!r}" in outcome["message"]
    assert outcome["seconds"] < SECONDS + 1.5
    assert outcome["peak_mb"] < 100


def test_the_limit_error_is_in_the_hierarchy() -> None:
    assert issubclass(ChatTemplateLimitError, ChatTemplateError)
    assert issubclass(ChatTemplateError, LocalLLMError)
    assert issubclass(ChatTemplateError, ValueError)


def test_a_template_cannot_change_the_callers_tools_or_variables() -> None:
    template = (
        "{% set _ = tools.append('x') %}{% set _ = extra.append('y') %}{% set _ = messages.pop() %}"
        "{{ tools | length }} {{ extra | length }} {{ messages | length }}"
    )
    tools: list[dict[str, Any]] = [{"type": "function", "function": {"name": "f"}}]
    extra = ["a"]
    messages = [{"role": "user", "content": "hi"}]
    assert render_chat_template(template, messages, tools=tools, extra=extra) == "2 2 0"
    assert (tools, extra, messages) == (
        [{"type": "function", "function": {"name": "f"}}],
        ["a"],
        [{"role": "user", "content": "hi"}],
    )


def test_the_error_names_the_templates_source() -> None:
    bomb = BOMBS["string multiplication"][0]
    with pytest.raises(ChatTemplateLimitError, match="GGUF file /models/evil.gguf") as caught:
        render_chat_template(SourcedTemplate(bomb, "GGUF file /models/evil.gguf"), USER)
    assert (caught.value.source, caught.value.limit) == ("GGUF file /models/evil.gguf", "size")
    with pytest.raises(ChatTemplateLimitError, match="llama-server /props at http://x") as caught:
        render_chat_template(bomb, USER, source="llama-server /props at http://x")
    # The same text from another source is refused at once, under that source's name.
    with pytest.raises(ChatTemplateLimitError, match="Ollama /api/show"):
        render_chat_template(SourcedTemplate(bomb, "Ollama /api/show of model 'm' at http://y"), USER)


def test_a_template_whose_probe_trips_a_bound_is_refused_at_once_afterwards() -> None:
    limits = ChatTemplateLimits(seconds=0.3)
    bomb = BOMBS["nested range loops"][0]
    start = time.monotonic()
    with pytest.raises(ChatTemplateLimitError, match="ran longer than 0.3 s"):
        render_chat_template(bomb, USER, limits=limits)
    first = time.monotonic() - start
    start = time.monotonic()
    with pytest.raises(ChatTemplateLimitError, match="ran longer than 0.3 s"):
        render_chat_template(bomb, USER, limits=limits)
    assert first >= 0.3 and time.monotonic() - start < 0.1


def test_bounds_grow_with_the_input() -> None:
    # A template that writes a long message three times is far past the base size limit,
    # and still renders: the limits grow with what the template is given.
    content = "word " * 400_000  # 2 M characters
    template = "{% for m in messages %}{{ m.content }}{{ m.content | upper }}{{ m.content ~ '!' }}"
    template += "{% endfor %}"
    limits = ChatTemplateLimits()
    text = render_chat_template(template, [{"role": "user", "content": content}], limits=limits)
    assert len(text) == 3 * len(content) + 1 > limits.chars


def test_what_a_template_raises_is_typed_with_its_cause() -> None:
    with pytest.raises(ChatTemplateError, match=r"ZeroDivisionError.*\(chat template from S\)") as caught:
        render_chat_template("{{ 1 / 0 }}", USER, source="S")
    assert isinstance(caught.value.__cause__, ZeroDivisionError)
    with pytest.raises(ChatTemplateError, match="Only user roles") as refused:
        render_chat_template("{{ raise_exception('Only user roles') }}", USER, source="S")
    assert refused.value.reason == "Only user roles"
    assert not isinstance(refused.value, ChatTemplateLimitError)
    with pytest.raises(ChatTemplateError, match="Expected an expression"):
        render_chat_template("{% for %}", USER)  # does not compile


def test_detection_raises_the_limit_error_and_a_registered_format_too() -> None:
    bomb = BOMBS["recursive macro"][0]

    class Served:
        model_name = "served-model"

        def chat_template(self) -> str:
            return SourcedTemplate(bomb, "llama-server /props at http://127.0.0.1:1")

    with pytest.raises(ChatTemplateLimitError, match=r"/props at http://127\.0\.0\.1:1.*recursed"):
        prompt_format(Served())
    with pytest.raises(ChatTemplateLimitError):
        format_from_chat_template(bomb)
    fmt = register_chat_format("hostile-test", bomb)
    try:
        with pytest.raises(ChatTemplateLimitError, match="the 'hostile-test' chat format"):
            fmt.render_messages(USER)
    finally:
        del FORMATS["hostile-test"]
    # A format that refuses a conversation is still the InvalidMessagesError it was.
    with pytest.raises(InvalidMessagesError, match="roles must alternate"):
        FORMATS["gemma"].render_messages([{"role": "assistant", "content": "a"}])


def test_real_templates_render_within_the_default_limits() -> None:
    long = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " * 50} for i in range(400)]
    for name, template in CHAT_TEMPLATES.items():
        text = render_chat_template(template, long, bos_token="")
        assert text.count("turn 399") == 50, name


def test_a_huge_or_deeply_nested_template_is_refused_before_it_is_parsed_for_long() -> None:
    with pytest.raises(ChatTemplateLimitError, match="characters") as caught:
        render_chat_template("{{ 'x' }}" * 40_000, USER)
    assert caught.value.limit == "size"
    with pytest.raises(ChatTemplateLimitError) as caught:
        render_chat_template("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", USER)
    assert caught.value.limit == "recursion"
