"""The built-in tool-call syntaxes, each registered once.

Each follows llama.cpp's parser for the same models (``common/chat*.cpp``) and is tested
against the model outputs of llama.cpp's ``tests/test-chat.cpp``.
"""

from __future__ import annotations

import json
import re

from langchain_localllm.prompts.tool_calls._read import (
    block_calls,
    blocks,
    call_from_object,
    json_array_calls,
    json_call,
    json_value,
    leading_json_call,
    python_calls,
    xml_parameters,
)
from langchain_localllm.prompts.tool_calls.registry import (
    CallLayout,
    RawCall,
    SectionParse,
    register_tool_call_syntax,
)

__all__: list[str] = []


def _json_body(body: str) -> RawCall:
    found = json_value(body)
    if found is None or body[found[1] :].strip():
        return RawCall(None, body.strip(), error="The tool call is not a JSON object.")
    return call_from_object(found[0], raw=body.strip())


# --- <tool_call>{json}</tool_call>: Hermes 2/3, Qwen 2.5/3, Granite 4, MiMo, Reka, SmolLM3 ---
@register_tool_call_syntax(
    "hermes",
    start=("<tool_call>",),
    template_markers=("<tool_call>",),
    layout=CallLayout('<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>', separator="\n"),
    priority=10,
)
def hermes(section: str, final: bool) -> SectionParse:
    """``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``, repeated."""
    return block_calls(section, "<tool_call>", "</tool_call>", final, _json_body)


_XML_PARAM = re.compile(r"<parameter=(?P<key>[^>\n]+)>\n?(?P<value>.*?)\n?</parameter>", re.DOTALL)


def _qwen3_coder_body(body: str) -> RawCall:
    match = re.search(r"<function=([^>\n]+)>(.*?)(?:</function>|$)", body, re.DOTALL)
    if match is None:
        return RawCall(None, body.strip(), error="The tool call has no <function=NAME>.")
    return RawCall(match.group(1).strip(), xml_parameters(match.group(2), _XML_PARAM))


# --- Qwen3-Coder, Nemotron 3: <tool_call><function=NAME><parameter=KEY>value</parameter> ---
@register_tool_call_syntax(
    "qwen3_coder", start=("<tool_call>",), template_markers=(("<function=", "<parameter="),), priority=30
)
def qwen3_coder(section: str, final: bool) -> SectionParse:
    """``<tool_call>\\n<function=NAME>\\n<parameter=K>\\nV\\n</parameter>\\n</function>\\n</tool_call>``."""
    return block_calls(section, "<tool_call>", "</tool_call>", final, _qwen3_coder_body)


_GLM_PARAM = re.compile(r"<arg_key>(?P<key>.*?)</arg_key>\s*<arg_value>(?P<value>.*?)</arg_value>", re.DOTALL)


def _glm_body(body: str) -> RawCall:
    name = body.split("<arg_key>", 1)[0].strip()
    if not name:
        return RawCall(None, body.strip(), error="The tool call names no tool.")
    return RawCall(name, xml_parameters(body, _GLM_PARAM))


# --- GLM 4.5-4.7: <tool_call>NAME<arg_key>k</arg_key><arg_value>v</arg_value></tool_call> ---
@register_tool_call_syntax("glm", start=("<tool_call>",), template_markers=("<arg_key>",), priority=30)
def glm(section: str, final: bool) -> SectionParse:
    """``<tool_call>NAME\\n<arg_key>K</arg_key>\\n<arg_value>V</arg_value>\\n</tool_call>``."""
    return block_calls(section, "<tool_call>", "</tool_call>", final, _glm_body)


def _python_tag(text: str) -> RawCall:
    """Llama 3.x ``<|python_tag|>`` body: a JSON call, a built-in ``tool.call(...)``, or code."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return _json_body(stripped)
    found = python_calls(stripped)
    if found and len(found) == 1 and found[0].name and found[0].name.endswith(".call"):
        return RawCall(found[0].name[: -len(".call")], found[0].args)
    return RawCall("python", {"code": stripped})


# --- Llama 3.1/3.2/3.3: a bare {"name", "parameters"} object, or <|python_tag|> ---
@register_tool_call_syntax(
    "llama3_json",
    start=("<|python_tag|>",),
    leading=("{",),
    template_markers=(("<|start_header_id|>", '"parameters"'), ("<|start_header_id|>", "<|python_tag|>")),
    layout=CallLayout('{{"name": "{name}", "parameters": {args}}}', separator="; "),
    priority=5,
)
def llama3_json(section: str, final: bool) -> SectionParse:
    """``{"name": ..., "parameters": {...}}`` (``;``-separated) or ``<|python_tag|>...``."""
    if section.startswith("<|python_tag|>"):
        body = section[len("<|python_tag|>") :]
        end = body.find("<|eom_id|>")
        if end < 0 and not final:
            return SectionParse()
        return SectionParse([_python_tag(body[: end if end >= 0 else None])])
    calls: list[RawCall] = []
    pos = 0
    while True:
        found = json_value(section, pos)
        if found is None:
            break
        obj, pos = found
        if not (isinstance(obj, dict) and "name" in obj and ("parameters" in obj or "arguments" in obj)):
            # Not a call: the whole answer is JSON content (the user asked for JSON).
            return SectionParse([], section if final else "") if not calls else SectionParse(calls, "")
        calls.append(call_from_object(obj))
        rest = section[pos:].lstrip()
        if not rest.startswith(";"):
            break
        pos = section.index(";", pos) + 1
    if not final:
        return SectionParse(calls)
    rest = section[pos:].strip() if calls else section
    if not calls:
        return SectionParse([], section)
    return SectionParse(calls, rest)


_MISTRAL = "[TOOL_CALLS]"


def _mistral_v11(segment: str) -> tuple[RawCall, str]:
    name, sep, args = segment.partition("[ARGS]")
    call_id = None
    if "[CALL_ID]" in name:
        name, _, call_id = name.partition("[CALL_ID]")
    if not sep:
        return RawCall(None, segment.strip(), error="The tool call has no [ARGS]."), ""
    return leading_json_call(name, args, call_id)


# --- Mistral: [TOOL_CALLS][{...}] (Nemo, 7B v0.3) or [TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{...} ---
@register_tool_call_syntax(
    "mistral",
    start=(_MISTRAL,),
    template_markers=(_MISTRAL,),
    layout=CallLayout("[TOOL_CALLS]{name}[ARGS]{args}"),
    priority=10,
)
def mistral(section: str, final: bool) -> SectionParse:
    """``[TOOL_CALLS][{"name", "arguments", "id"}]`` or ``[TOOL_CALLS]NAME[ARGS]{...}`` repeated."""
    if section[len(_MISTRAL) :].lstrip().startswith("["):
        return json_array_calls(section, _MISTRAL, final)
    segments = section.split(_MISTRAL)[1:]
    calls: list[RawCall] = []
    text: list[str] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if last and not final:
            args_at = segment.find("[ARGS]")
            found = json_value(segment, args_at + len("[ARGS]")) if args_at >= 0 else None
            if found is None or not isinstance(found[0], dict):
                break
        call, rest = _mistral_v11(segment)
        calls.append(call)
        text.append(rest)
    return SectionParse(calls, "".join(text).strip() if final else "")


_DS_SEP = "<｜tool▁sep｜>"


def _deepseek_body(body: str) -> RawCall:
    head, sep, tail = body.partition(_DS_SEP)
    if not sep:
        return RawCall(None, body.strip(), error="The tool call has no <｜tool▁sep｜>.")
    if head.strip() == "function" and "\n" in tail:  # R1: function<sep>NAME\n```json\n{...}```
        name, _, args = tail.partition("\n")
        return json_call(name, args)
    return json_call(head, tail)  # V3.1: NAME<sep>{...}


# --- DeepSeek R1 and V3/V3.1 ---
@register_tool_call_syntax(
    "deepseek",
    start=("<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>"),
    template_markers=("<｜tool▁calls▁begin｜>",),
    layout=CallLayout(
        "<｜tool▁call▁begin｜>{name}<｜tool▁sep｜>{args}<｜tool▁call▁end｜>",
        open="<｜tool▁calls▁begin｜>",
        close="<｜tool▁calls▁end｜>",
    ),
    priority=10,
)
def deepseek(section: str, final: bool) -> SectionParse:
    """``<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>...<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>``."""
    return block_calls(
        section,
        "<｜tool▁call▁begin｜>",
        "<｜tool▁call▁end｜>",
        final,
        _deepseek_body,
        outer=("<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"),
    )


def _invoke_reader(prefix: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    invoke = re.compile(
        rf'<{prefix}invoke name="(?P<name>[^"]+)">(?P<body>.*?)(?:</{prefix}invoke>|$)', re.DOTALL
    )
    param = re.compile(
        rf'<{prefix}parameter name="(?P<key>[^"]+)"(?: string="(?P<string>true|false)")?>'
        rf"(?P<value>.*?)</{prefix}parameter>",
        re.DOTALL,
    )
    return invoke, param


def _invoke_calls(section: str, final: bool, prefix: str) -> SectionParse:
    invoke, param = _invoke_reader(prefix)
    bodies, _rest = blocks(section, f"<{prefix}invoke ", f"</{prefix}invoke>", final)
    calls = []
    for body, _closed in bodies:
        match = invoke.match(f"<{prefix}invoke " + body)
        if match is None:
            calls.append(RawCall(None, body.strip(), error="The tool call has no name."))
        else:
            calls.append(RawCall(match.group("name"), xml_parameters(match.group("body"), param)))
    return SectionParse(calls, "")


# --- DeepSeek V3.2 DSML ---
@register_tool_call_syntax(
    "deepseek_dsml", start=("<｜DSML｜function_calls>",), template_markers=("DSML",), priority=20
)
def deepseek_dsml(section: str, final: bool) -> SectionParse:
    """``<｜DSML｜invoke name="F"><｜DSML｜parameter name="K" string="true">V</｜DSML｜parameter>``."""
    return _invoke_calls(section, final, "｜DSML｜")


# --- MiniMax M2 ---
@register_tool_call_syntax(
    "minimax", start=("<minimax:tool_call>",), template_markers=("<minimax:tool_call>",), priority=20
)
def minimax(section: str, final: bool) -> SectionParse:
    """``<minimax:tool_call><invoke name="F"><parameter name="K">V</parameter></invoke>``."""
    return _invoke_calls(section, final, "")


def _functionary_body(body: str) -> RawCall:
    name, sep, args = body.partition(">")
    if not sep:
        return RawCall(None, body.strip(), error="The tool call has no <function=NAME>.")
    return json_call(name, args)


# --- Functionary v3.1 (Llama 3.1): <function=NAME>{...}</function> ---
@register_tool_call_syntax(
    "functionary_v3_1",
    start=("<function=", "<|python_tag|>"),
    template_markers=(("<function=", "<|python_tag|>"),),
    layout=CallLayout("<function={name}>{args}</function>"),
    priority=20,
)
def functionary_v3_1(section: str, final: bool) -> SectionParse:
    """``<function=NAME>{"a": 1}</function>`` repeated; ``<|python_tag|>code`` runs python."""
    if section.startswith("<|python_tag|>"):
        if not final:
            return SectionParse()
        return SectionParse([RawCall("python", {"code": section[len("<|python_tag|>") :].strip()})])
    return block_calls(section, "<function=", "</function>", final, _functionary_body)


# --- Functionary v3.2: the prompt ends with ">>>"; "all" is text, other recipients are tools ---
@register_tool_call_syntax("functionary_v3_2", implicit=True, template_markers=(">>>all",), priority=20)
def functionary_v3_2(section: str, final: bool) -> SectionParse:
    """``all\\ntext`` or ``NAME\\n{...}``, more turns after ``>>>``."""
    segments = section.split(">>>")
    calls: list[RawCall] = []
    text: list[str] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        recipient, newline, body = segment.partition("\n")
        if last and not final:
            found = json_value(body) if newline and recipient.strip() != "all" else None
            if found is None or not isinstance(found[0], dict):
                break
        if recipient.strip() == "all":
            text.append(body)
        elif recipient.strip() == "python":
            calls.append(RawCall("python", {"code": body}))
        else:
            call, rest = leading_json_call(recipient, body)
            calls.append(call)
            text.append(rest)
    if not final and not calls:
        return SectionParse()
    return SectionParse(calls, "".join(text) if final else "")


# --- FireFunction v2: " functools[{...}]" ---
@register_tool_call_syntax(
    "firefunction_v2", start=("functools[",), template_markers=("functools[",), priority=20
)
def firefunction_v2(section: str, final: bool) -> SectionParse:
    """``functools[{"name": ..., "arguments": {...}}, ...]``."""
    return json_array_calls(section, "functools", final)


# --- Granite 3.x: <|tool_call|>[{...}] ---
@register_tool_call_syntax(
    "granite",
    start=("<|tool_call|>",),
    template_markers=("<|tool_call|>",),
    layout=CallLayout(
        '{{"name": "{name}", "arguments": {args}}}', open="<|tool_call|>[", separator=", ", close="]"
    ),
    priority=20,
)
def granite(section: str, final: bool) -> SectionParse:
    """``<|tool_call|>[{"name": ..., "arguments": {...}}]``."""
    return json_array_calls(section, "<|tool_call|>", final)


# --- Apriel 1.5/1.6: <tool_calls>[{...}]</tool_calls> ---
@register_tool_call_syntax("apriel", start=("<tool_calls>",), template_markers=("<tool_calls>",), priority=20)
def apriel(section: str, final: bool) -> SectionParse:
    """``<tool_calls>[{"name": ..., "arguments": {...}}]</tool_calls>``."""
    parsed = json_array_calls(section, "<tool_calls>", final)
    parsed.text = parsed.text.replace("</tool_calls>", "").strip()
    return parsed


# --- Command R7B, Cohere: <|START_ACTION|>[{"tool_call_id", "tool_name", "parameters"}]<|END_ACTION|> ---
@register_tool_call_syntax(
    "command_r", start=("<|START_ACTION|>",), template_markers=("<|START_ACTION|>",), priority=20
)
def command_r(section: str, final: bool) -> SectionParse:
    """``<|START_ACTION|>[{"tool_call_id": "0", "tool_name": ..., "parameters": {...}}]<|END_ACTION|>``."""
    parsed = json_array_calls(
        section, "<|START_ACTION|>", final, name_keys=("tool_name", "name"), id_keys=("tool_call_id", "id")
    )
    parsed.text = parsed.text.replace("<|END_ACTION|>", "").strip()
    return parsed


_KIMI_CALL = re.compile(
    r"\s*(?P<id>(?:functions\.)?(?P<name>[^:<\s]+)(?::\d+)?)\s*<\|tool_call_argument_begin\|>"
)


def _kimi_body(body: str) -> RawCall:
    match = _KIMI_CALL.match(body)
    if match is None:
        return RawCall(None, body.strip(), error="The tool call has no functions.NAME:N header.")
    return json_call(match.group("name"), body[match.end() :], match.group("id"))


# --- Kimi K2 ---
@register_tool_call_syntax(
    "kimi_k2",
    start=("<|tool_calls_section_begin|>",),
    template_markers=("<|tool_calls_section_begin|>",),
    priority=20,
)
def kimi_k2(section: str, final: bool) -> SectionParse:
    """``<|tool_call_begin|>functions.NAME:0<|tool_call_argument_begin|>{...}<|tool_call_end|>``."""
    return block_calls(
        section,
        "<|tool_call_begin|>",
        "<|tool_call_end|>",
        final,
        _kimi_body,
        outer=("<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"),
    )


_GEMMA_STRING = re.compile(r'<\|"\|>(.*?)<\|"\|>', re.DOTALL)
_BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_][\w.-]*)\s*:")


def _gemma_args(text: str) -> str:
    """Gemma 4's argument notation (bare keys, ``<|"|>`` quotes) as JSON text."""
    strings: list[str] = []

    def keep(match: re.Match[str]) -> str:
        strings.append(match.group(1))
        return f"\x00{len(strings) - 1}\x00"

    masked = _BARE_KEY.sub(r'\1"\2":', _GEMMA_STRING.sub(keep, text))
    return re.sub("\x00(\\d+)\x00", lambda m: json.dumps(strings[int(m.group(1))]), masked)


def _gemma_body(body: str) -> RawCall:
    body = body.strip()
    if not body.startswith("call:") or "{" not in body:
        return RawCall(None, body, error="The tool call is not call:NAME{...}.")
    name, _, args = body[len("call:") :].partition("{")
    return json_call(name, _gemma_args("{" + args))


# --- Gemma 4: <|tool_call>call:NAME{key:<|"|>value<|"|>}<tool_call|> ---
@register_tool_call_syntax("gemma4", start=("<|tool_call>",), template_markers=("<|tool_call>",), priority=20)
def gemma4(section: str, final: bool) -> SectionParse:
    """``<|tool_call>call:NAME{city:<|"|>Paris<|"|>}<tool_call|>`` repeated."""
    return block_calls(section, "<|tool_call>", "<tool_call|>", final, _gemma_body)


# --- LFM2: <|tool_call_start|>[f(a=1), g(b="x")]<|tool_call_end|> ---
@register_tool_call_syntax(
    "lfm2", start=("<|tool_call_start|>",), template_markers=("<|tool_call_start|>",), priority=20
)
def lfm2(section: str, final: bool) -> SectionParse:
    """Python calls in a list: ``<|tool_call_start|>[f(a=1)]<|tool_call_end|>``."""
    body, closed, rest = section[len("<|tool_call_start|>") :].partition("<|tool_call_end|>")
    if not closed and not final:
        return SectionParse()
    calls = python_calls(body)
    if calls is None:
        return SectionParse([RawCall(None, body.strip(), error="The tool calls are not Python calls.")], rest)
    return SectionParse(calls, rest.strip() if final else "")


_HARMONY = re.compile(
    r"to=functions\.(?P<name>[^\s<]+)[^\n]*?<\|message\|>(?P<args>.*?)(?:<\|call\|>|$)", re.DOTALL
)


# --- gpt-oss (harmony): to=functions.NAME ... <|message|>{...}<|call|> ---
@register_tool_call_syntax(
    "harmony", start=("to=functions.",), template_markers=(("<|channel|>", "to="),), priority=20
)
def harmony(section: str, final: bool) -> SectionParse:
    """``to=functions.NAME ... <|message|>{...}<|call|>``."""
    calls: list[RawCall] = []
    for part in section.split("to=functions.")[1:]:
        match = _HARMONY.match("to=functions." + part)
        complete = match is not None and (
            "<|call|>" in part or (json_value(match.group("args")) or (None,))[0] is not None
        )
        if not final and not complete:
            break
        if match is None:
            calls.append(RawCall(None, part.strip(), error="The tool call has no <|message|>."))
        else:
            calls.append(leading_json_call(match.group("name"), match.group("args"))[0])
    return SectionParse(calls)
