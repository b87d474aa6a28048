"""The tool-call syntax registry: real model outputs parse to the right calls, whole or streamed.

The outputs are llama.cpp's test cases for the same models (llama-cpp-python 0.3.36 sdist,
vendor/llama.cpp/tests/test-chat.cpp, MIT licence), copied verbatim; the expected calls
are the ones that file asserts.
"""

from __future__ import annotations

import pytest

from langchain_localllm.errors import InvalidParameterError
from langchain_localllm.prompts.tool_calls import (
    SYNTAXES,
    ToolCallParser,
    detect_tool_call_syntax,
    get_tool_call_syntax,
    parse_tool_calls,
    register_tool_call_syntax,
)

SF = ("special_function", {"arg1": 1})
SF_OPT = ("special_function_with_opt", {"arg1": 1, "arg2": 2})
HELLO = "Hello, world!\nWhat's up?"

# (syntax, model output, expected content, expected [(name, args)]) -- from test-chat.cpp
CASES = [
    ("hermes", '<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}</tool_call>', "", [SF]),
    (
        "hermes",
        'Hello, world!\nWhat\'s up?<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}</tool_call>',
        HELLO,
        [SF],
    ),
    (
        "hermes",
        '<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}\n</tool_call>\n<tool_call>\n'
        '{"name": "special_function_with_opt", "arguments": {"arg1": 1, "arg2": 2}}\n</tool_call>',
        "",
        [SF, SF_OPT],
    ),
    (
        "qwen3_coder",
        "<tool_call>\n<function=special_function>\n<parameter=arg1>\n1\n</parameter>\n</function>\n</tool_call>",
        "",
        [SF],
    ),
    (
        "glm",
        "<tool_call>special_function\n<arg_key>arg1</arg_key>\n<arg_value>1</arg_value>\n</tool_call>",
        "",
        [SF],
    ),
    (
        "deepseek",
        '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{"city": "XYZCITY"}'
        "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        "",
        [("get_time", {"city": "XYZCITY"})],
    ),
    (
        "deepseek",
        'CONTENT<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{"city": "Paris"}'
        '<｜tool▁call▁end｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Paris"}'
        "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        "CONTENT",
        [("get_time", {"city": "Paris"}), ("get_weather", {"city": "Paris"})],
    ),
    (
        "deepseek",  # R1: type, separator, name, fenced JSON
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>special_function\n"
        '```json\n{"arg1": 1}```<｜tool▁call▁end｜><｜tool▁calls▁end｜>',
        "",
        [SF],
    ),
    (
        "deepseek_dsml",
        '<｜DSML｜function_calls>\n<｜DSML｜invoke name="special_function">\n'
        '<｜DSML｜parameter name="arg1" string="false">1</｜DSML｜parameter>\n</｜DSML｜invoke>\n'
        "</｜DSML｜function_calls>",
        "",
        [SF],
    ),
    (
        "deepseek_dsml",
        '<｜DSML｜function_calls>\n<｜DSML｜invoke name="get_time">\n'
        '<｜DSML｜parameter name="city" string="true">Tokyo</｜DSML｜parameter>\n</｜DSML｜invoke>\n'
        "</｜DSML｜function_calls>",
        "",
        [("get_time", {"city": "Tokyo"})],
    ),
    (
        "minimax",
        '<minimax:tool_call>\n<invoke name="special_function">\n<parameter name="arg1">1</parameter>\n'
        "</invoke>\n</minimax:tool_call>",
        "",
        [SF],
    ),
    (
        "minimax",
        '<minimax:tool_call>\n<invoke name="empty_args">\n</invoke>\n</minimax:tool_call>',
        "",
        [("empty_args", {})],
    ),
    (
        "mistral",
        '[TOOL_CALLS][{"name": "special_function", "arguments": {"arg1": 1}, "id": "123456789"}]',
        "",
        [SF],
    ),
    ("mistral", '[TOOL_CALLS]special_function[CALL_ID]123456789[ARGS]{"arg1": 1}', "", [SF]),
    (
        "mistral",
        '[TOOL_CALLS]special_function[CALL_ID]000000001[ARGS]{"arg1": 1}'
        '[TOOL_CALLS]special_function_with_opt[CALL_ID]000000002[ARGS]{"arg1": 1, "arg2": 2}',
        "",
        [SF, SF_OPT],
    ),
    ("mistral", 'Hello, world!\nWhat\'s up?[TOOL_CALLS]special_function[ARGS]{"arg1": 1}', HELLO, [SF]),
    ("functionary_v3_1", '<function=special_function>{"arg1": 1}</function>', "", [SF]),
    ("functionary_v3_1", HELLO, HELLO, []),
    ("functionary_v3_2", 'special_function\n{"arg1": 1}', "", [SF]),
    ("functionary_v3_2", "all\nHello, world!\nWhat's up?", HELLO, []),
    ("firefunction_v2", ' functools[{"name": "special_function", "arguments": {"arg1": 1}}]', " ", [SF]),
    ("apriel", '<tool_calls>[{"name": "special_function", "arguments": {"arg1": 1}}]</tool_calls>', "", [SF]),
    (
        "command_r",
        '<|START_ACTION|>[\n    {"tool_call_id": "0", "tool_name": "special_function", "parameters": {"arg1": 1}}\n'
        "]<|END_ACTION|>",
        "",
        [SF],
    ),
    (
        "kimi_k2",
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.special_function:0<|tool_call_argument_begin|>"
        '{"arg1": 1}<|tool_call_end|><|tool_calls_section_end|>',
        "",
        [SF],
    ),
    (
        "gemma4",
        '<|tool_call>call:get_time{city:<|"|>London<|"|>}<tool_call|>',
        "",
        [("get_time", {"city": "London"})],
    ),
    ("gemma4", "<|tool_call>call:empty_args{}<tool_call|>", "", [("empty_args", {})]),
    (
        "gemma4",
        'Hello, world!\nWhat\'s up?<|tool_call>call:get_time{city:<|"|>Paris<|"|>}<tool_call|>',
        HELLO,
        [("get_time", {"city": "Paris"})],
    ),
    (
        "gemma4",
        '<|tool_call>call:get_time{city:<|"|>London<|"|>}<tool_call|><|tool_call>call:get_weather{city:<|"|>Paris<|"|>}<tool_call|>',
        "",
        [("get_time", {"city": "London"}), ("get_weather", {"city": "Paris"})],
    ),
    (
        "gemma4",
        "<|tool_call>call:special_function{arg1:42}<tool_call|>",
        "",
        [("special_function", {"arg1": 42})],
    ),
    ("lfm2", "<|tool_call_start|>[special_function(arg1=1)]<|tool_call_end|>", "", [SF]),
    (
        "lfm2",
        "<|tool_call_start|>[toggle(enabled=True)]<|tool_call_end|>",
        "",
        [("toggle", {"enabled": True})],
    ),
    (
        "lfm2",
        '<|tool_call_start|>[set_config(config={"enabled": true, "note": null})]<|tool_call_end|>',
        "",
        [("set_config", {"config": {"enabled": True, "note": None}})],
    ),
    (
        "lfm2",
        "<|tool_call_start|>[special_function(arg1=1), special_function_with_opt(arg1=1, arg2=2)]<|tool_call_end|>",
        "",
        [SF, SF_OPT],
    ),
    (
        "lfm2",
        'Let me check the time.<|tool_call_start|>[get_time(city="Paris")]<|tool_call_end|>',
        "Let me check the time.",
        [("get_time", {"city": "Paris"})],
    ),
    ("harmony", ' to=functions.special_function<|channel|>analysis<|message|>{"arg1": 1}', " ", [SF]),
    (
        "harmony",
        ' to=functions.special_function<|channel|>analysis <|constrain|>json<|message|>{"arg1": 1}',
        " ",
        [SF],
    ),
    (
        "harmony",
        '<|channel|>commentary to=functions.special_function<|message|>{"arg1": 1}',
        "<|channel|>commentary ",
        [SF],
    ),
    # Llama 3.x (the JSON tool-call format its chat template documents)
    ("llama3_json", '{"name": "special_function", "parameters": {"arg1": 1}}', "", [SF]),
    ("llama3_json", '{"type": "function", "name": "special_function", "parameters": {"arg1": 1}}', "", [SF]),
    ("llama3_json", '<|python_tag|>python.call(code="print(1)")', "", [("python", {"code": "print(1)"})]),
    ("llama3_json", '{"answer": 42}', '{"answer": 42}', []),
    ("llama3_json", HELLO, HELLO, []),
    (
        "granite",
        '<|tool_call|>[{"name": "get_weather", "arguments": {"location": "NYC"}}]',
        "",
        [("get_weather", {"location": "NYC"})],
    ),
]


def _calls(parsed):  # type: ignore[no-untyped-def]
    return [(c["name"], c["args"]) for c in parsed.tool_calls()]


@pytest.mark.parametrize(("syntax", "output", "content", "calls"), CASES)
def test_real_outputs_parse_to_the_right_calls(syntax: str, output: str, content: str, calls: list) -> None:
    parsed = parse_tool_calls(output, get_tool_call_syntax(syntax))
    assert parsed.content == content
    assert _calls(parsed) == calls
    assert parsed.invalid_tool_calls() == []
    assert all(c["id"] for c in parsed.tool_calls())


@pytest.mark.parametrize(("syntax", "output", "content", "calls"), CASES)
def test_every_stream_split_gives_the_same_result(
    syntax: str, output: str, content: str, calls: list
) -> None:
    for cut in range(len(output) + 1):
        parser = ToolCallParser(get_tool_call_syntax(syntax))
        pieces = [parser.feed(output[:cut]), parser.feed(output[cut:]), parser.finish()]
        assert "".join(p.content for p in pieces) == content, cut
        assert [c for p in pieces for c in _calls(p)] == calls, cut


@pytest.mark.parametrize(("syntax", "output", "content", "calls"), CASES)
def test_character_by_character_stream_releases_content_early(
    syntax: str, output: str, content: str, calls: list
) -> None:
    parser = ToolCallParser(get_tool_call_syntax(syntax))
    steps = [parser.feed(ch) for ch in output] + [parser.finish()]
    assert "".join(s.content for s in steps) == content
    chunks = [chunk for s in steps for chunk in s.tool_call_chunks()]
    assert [ch["index"] for ch in chunks] == list(range(len(calls)))
    assert [ch["name"] for ch in chunks] == [name for name, _ in calls]


def test_content_is_released_before_the_output_ends() -> None:
    parser = ToolCallParser(get_tool_call_syntax("hermes"))
    assert parser.feed("Let me look that up. <tool").content == "Let me look that up. "
    out = parser.feed('_call>\n{"name": "search", "arguments": {"q": "x"}}\n</tool_call>')
    assert out.tool_calls()[0]["args"] == {"q": "x"}  # released when its block closes, before finish()
    assert parser.finish().calls == []


UNPARSABLE = [
    ("hermes", '<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1</tool_call>'),
    ("hermes", '<tool_call>\n{"name": "special_function", "arguments": {"arg'),  # cut off by max_tokens
    ("mistral", "[TOOL_CALLS]special_function[ARGS]{arg1: 1}"),
    (
        "deepseek",
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{city}<｜tool▁call▁end｜>",
    ),
    ("granite", '<|tool_call|>[{"name": "get_weather", "arguments": '),
    ("lfm2", "<|tool_call_start|>[special_function(arg1="),
    ("gemma4", "<|tool_call>get_time<tool_call|>"),
    ("command_r", '<|START_ACTION|>[\n    {"tool_call_id": "0", "tool_name": "special_function", '),
]


@pytest.mark.parametrize(("syntax", "output"), UNPARSABLE)
def test_unparsable_calls_become_invalid_tool_calls_with_their_text(syntax: str, output: str) -> None:
    for cut in (0, len(output) // 2, len(output)):
        parser = ToolCallParser(get_tool_call_syntax(syntax))
        pieces = [parser.feed(output[:cut]), parser.feed(output[cut:]), parser.finish()]
        invalid = [c for p in pieces for c in p.invalid_tool_calls()]
        assert [c for p in pieces for c in p.tool_calls()] == []
        assert len(invalid) == 1 and invalid[0]["error"]
        # no text lost: the call's raw text is carried by the invalid call
        assert invalid[0]["args"] and invalid[0]["args"] in output


def test_no_syntax_means_all_content() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": "x", "arguments": {}}</tool_call>', None)
    assert parsed.calls == [] and parsed.content.startswith("<tool_call>")


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="already registered"):
        register_tool_call_syntax("hermes", start=("<x>",))(lambda section, final: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(InvalidParameterError, match="Known syntaxes"):
        get_tool_call_syntax("nope")


@pytest.mark.parametrize(
    ("template_text", "expected"),
    [
        ("{{'<|im_start|>'}}{% if tools %}<tools></tools> <tool_call>{% endif %}", "hermes"),
        ("<tool_call>\\n<function=  <parameter=", "qwen3_coder"),
        ("<tool_call>{{ name }}<arg_key>", "glm"),
        ('<|start_header_id|>ipython ... "parameters": dictionary', "llama3_json"),
        ("[INST] [TOOL_CALLS] [AVAILABLE_TOOLS]", "mistral"),
        ("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>", "deepseek"),
        ("<function={{ name }}> <|python_tag|>", "functionary_v3_1"),
        (">>>all\n", "functionary_v3_2"),
        ("<|tool_call|>", "granite"),
        ("<|tool_call>call:", "gemma4"),
        ("<|channel|>analysis to=", "harmony"),
        ("{{ bos_token }}{{ messages }}", None),
    ],
)
def test_detection_from_chat_template_markers(template_text: str, expected: str | None) -> None:
    found = detect_tool_call_syntax(template_text)
    assert (found.name if found else None) == expected


def test_every_registered_syntax_has_a_real_example() -> None:
    assert {syntax for syntax, *_ in CASES} == set(SYNTAXES)


def test_streamed_invalid_calls_stay_invalid_in_langchain_messages() -> None:
    from langchain_core.messages import AIMessageChunk

    output = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par'  # cut off by max_tokens
    parser = ToolCallParser(get_tool_call_syntax("hermes"))
    pieces = [parser.feed(output[:20]), parser.feed(output[20:]), parser.finish()]
    chunks = [AIMessageChunk(content=p.content, tool_call_chunks=p.tool_call_chunks()) for p in pieces]
    message = chunks[0] + chunks[1] + chunks[2]
    assert message.tool_calls == []
    assert len(message.invalid_tool_calls) == 1
    assert "get_weather" in (message.invalid_tool_calls[0]["args"] or "")
