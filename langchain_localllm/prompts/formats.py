"""The built-in chat formats, each registered in one place with its real chat template.

The templates are the ones these model families ship in ``tokenizer_config.json``;
generated test models carry the same text as ``tokenizer.chat_template``. Their
single-turn layout (``render(user, system)``, what the chains use) leaves the
beginning-of-sequence token out: the runtimes add it when they tokenize the prompt.
"""

from __future__ import annotations

from langchain_localllm.prompts.registry import register_chat_format

__all__ = ["alpaca", "chatml", "gemma", "llama2", "llama3", "mistral", "phi3", "plain"]


@register_chat_format(
    "llama3",
    template_markers=("<|start_header_id|>",),
    name_patterns=(r"llama[-_ .]?3",),
    stop=("<|eot_id|>",),
    priority=60,
)
def llama3() -> str:
    """Llama 3: header-delimited turns closed by ``<|eot_id|>``."""
    return (
        "{% set loop_messages = messages %}{% for message in loop_messages %}"
        "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
        "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
        "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
    )


@register_chat_format(
    "chatml",
    template_markers=("<|im_start|>",),
    name_patterns=(r"qwen", r"hermes", r"dolphin", r"chatml", r"orca", r"tinyllama", r"smollm", r"\byi\b"),
    stop=("<|im_end|>", "<|im_start|>"),
    priority=55,
)
def chatml() -> str:
    """ChatML (Qwen, OpenHermes, ...): ``<|im_start|>role ... <|im_end|>`` turns."""
    return (
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
        " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )


@register_chat_format(
    "phi3",
    template_markers=(("<|user|>", "<|assistant|>"),),
    name_patterns=(r"phi[-_ .]?3",),
    stop=("<|end|>", "<|user|>"),
    priority=50,
)
def phi3() -> str:
    """Phi-3: ``<|user|>``/``<|assistant|>`` turns closed by ``<|end|>``."""
    return (
        "{% for message in messages %}{% if message['role'] == 'system' %}"
        "{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}"
        "{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
        "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}"
        "{{ eos_token }}{% endif %}"
    )


@register_chat_format(
    "gemma",
    template_markers=("<start_of_turn>",),
    name_patterns=(r"gemma",),
    stop=("<end_of_turn>",),
    priority=50,
)
def gemma() -> str:
    """Gemma: ``<start_of_turn>user``/``model`` turns; no system role, so it leads the user turn."""
    return (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
        "{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}"
        "{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n'"
        " + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
    )


@register_chat_format(
    "llama2",
    template_markers=(("[INST]", "<<SYS>>"),),
    name_patterns=(r"llama[-_ .]?2", r"codellama"),
    stop=("[INST]",),
    priority=40,
)
def llama2() -> str:
    """Llama 2 chat: the system message sits inside the first ``[INST]``, in ``<<SYS>>``."""
    return (
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
        "{% set system_message = messages[0]['content'] %}{% else %}"
        "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
        "{% for message in loop_messages %}"
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
        "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
        "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
        "{% else %}{% set content = message['content'] %}{% endif %}"
        "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
        "{% endif %}{% endfor %}"
    )


@register_chat_format(
    "mistral",
    template_markers=("[INST]",),
    name_patterns=(r"mistral", r"mixtral"),
    stop=("[INST]",),
    priority=30,
)
def mistral() -> str:
    """Mistral instruct: ``[INST] ... [/INST]``, no system role, so it leads the instruction."""
    return (
        "{{ bos_token }}{% for message in messages %}"
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
        "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
        "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}"
        "{% endif %}{% endfor %}"
    )


@register_chat_format(
    "alpaca",
    template_markers=("### Instruction:",),
    name_patterns=(r"alpaca",),
    stop=("### Instruction:",),
    priority=20,
)
def alpaca() -> str:
    """Alpaca: ``### Instruction:`` / ``### Response:`` sections."""
    return (
        "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
        "{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
        "{% elif message['role'] == 'assistant' %}{{ '### Response:\\n' + message['content'] + '\\n\\n' }}"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"
    )


@register_chat_format("plain", priority=-100)
def plain() -> str:
    """No markup: for base models and models whose format is unknown."""
    return (
        "{% for message in messages %}{{ message['content'] }}{% if not loop.last %}{{ '\\n\\n' }}{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}{{ '\\n' }}{% endif %}"
    )
