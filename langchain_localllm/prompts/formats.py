"""The built-in prompt formats, each registered in one place.

Beginning-of-sequence tokens (``<s>``, ``<|begin_of_text|>``, ``<bos>``) are left
out: the runtimes add them when they tokenize the prompt.
"""

from __future__ import annotations

from langchain_localllm.prompts.registry import register_prompt_format

__all__ = ["alpaca", "chatml", "gemma", "llama2", "llama3", "mistral", "phi3", "plain"]


@register_prompt_format(
    "llama3",
    template_markers=("<|start_header_id|>",),
    name_patterns=(r"llama[-_ .]?3",),
    stop=("<|eot_id|>",),
    priority=60,
)
def llama3(system: str, user: str) -> str:
    """Llama 3: header-delimited turns closed by ``<|eot_id|>``."""
    turns = f"<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>" if system else ""
    return (
        f"{turns}<|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


@register_prompt_format(
    "chatml",
    template_markers=("<|im_start|>",),
    name_patterns=(r"qwen", r"hermes", r"dolphin", r"chatml", r"orca", r"tinyllama", r"smollm", r"\byi\b"),
    stop=("<|im_end|>", "<|im_start|>"),
    priority=55,
)
def chatml(system: str, user: str) -> str:
    """ChatML (Qwen, OpenHermes, ...): ``<|im_start|>role ... <|im_end|>`` turns."""
    turns = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
    return f"{turns}<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


@register_prompt_format(
    "phi3",
    template_markers=(("<|user|>", "<|assistant|>"),),
    name_patterns=(r"phi[-_ .]?3",),
    stop=("<|end|>", "<|user|>"),
    priority=50,
)
def phi3(system: str, user: str) -> str:
    """Phi-3: ``<|user|>``/``<|assistant|>`` turns closed by ``<|end|>``."""
    turns = f"<|system|>\n{system}<|end|>\n" if system else ""
    return f"{turns}<|user|>\n{user}<|end|>\n<|assistant|>\n"


@register_prompt_format(
    "gemma",
    template_markers=("<start_of_turn>",),
    name_patterns=(r"gemma",),
    stop=("<end_of_turn>",),
    priority=50,
)
def gemma(system: str, user: str) -> str:
    """Gemma: ``<start_of_turn>user``/``model`` turns; no system role, so it leads the user turn."""
    content = f"{system}\n\n{user}" if system else user
    return f"<start_of_turn>user\n{content}<end_of_turn>\n<start_of_turn>model\n"


@register_prompt_format(
    "llama2",
    template_markers=(("[INST]", "<<SYS>>"),),
    name_patterns=(r"llama[-_ .]?2", r"codellama"),
    stop=("[INST]",),
    priority=40,
)
def llama2(system: str, user: str) -> str:
    """Llama 2 chat: the system message sits inside the first ``[INST]``, in ``<<SYS>>``."""
    sys_block = f"<<SYS>>\n{system}\n<</SYS>>\n\n" if system else ""
    return f"[INST] {sys_block}{user} [/INST]"


@register_prompt_format(
    "mistral",
    template_markers=("[INST]",),
    name_patterns=(r"mistral", r"mixtral"),
    stop=("[INST]",),
    priority=30,
)
def mistral(system: str, user: str) -> str:
    """Mistral instruct: ``[INST] ... [/INST]``, no system role, so it leads the instruction."""
    content = f"{system}\n\n{user}" if system else user
    return f"[INST] {content} [/INST]"


@register_prompt_format(
    "alpaca",
    template_markers=("### Instruction:",),
    name_patterns=(r"alpaca",),
    stop=("### Instruction:",),
    priority=20,
)
def alpaca(system: str, user: str) -> str:
    """Alpaca: ``### Instruction:`` / ``### Response:`` sections."""
    preamble = f"{system}\n\n" if system else ""
    return f"{preamble}### Instruction:\n{user}\n\n### Response:\n"


@register_prompt_format("plain", priority=-100)
def plain(system: str, user: str) -> str:
    """No markup: for base models and models whose format is unknown."""
    preamble = f"{system}\n\n" if system else ""
    return f"{preamble}{user}\n"
