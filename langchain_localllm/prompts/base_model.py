"""Tell a base (pretrained) model from a chat model by its chat template.

A base model continues text: it has no chat template (GGUF metadata without
``tokenizer.chat_template``, llama-server's ``/props`` reporting only its built-in
ChatML fallback) or a template that passes the prompt through unchanged (Ollama's
``{{ .Prompt }}``). Such a model must get completion-style prompts
(:mod:`langchain_localllm.prompts.completion`), never turn markers guessed from its
name: ``gemma-3-270m.gguf`` is named like a Gemma chat model but does not know
``<start_of_turn>``.
"""

from __future__ import annotations

import re

__all__ = ["LLAMA_SERVER_FALLBACK_TEMPLATE", "PROBE_CONTENTS", "is_base_model_template"]

LLAMA_SERVER_FALLBACK_TEMPLATE = (
    "{%- for message in messages -%}\n"
    "  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\n' -}}\n"
    "{%- endif -%}"
)
"""The template llama-server reports in ``/props`` for a model that has none
(``CHATML_TEMPLATE_SRC`` in llama.cpp's ``common/chat.cpp``)."""

_GO_ACTION = re.compile(r"\{\{-?.*?-?\}\}", re.DOTALL)
_GO_PROMPT_ONLY = re.compile(
    r"\{\{-?\s*(?:\.Prompt|\.Content|\.Response|\.System|(?:if|else|end|range)\b[^}]*?)\s*-?\}\}"
)
_JINJA_TAG = re.compile(r"\{%-?.*?-?%\}|\{#.*?#\}", re.DOTALL)


def is_base_model_template(template: str | None, rendered: str | None = None) -> bool:
    """True when ``template`` says the model is a base model (see the module docstring).

    ``None`` or blank is a base model. So is a pass-through: a Go template that places
    only the prompt (``{{ .Prompt }}``), or a template whose ``rendered`` probe
    conversation (``prompts.detect`` renders it) is nothing but the messages' contents,
    with no role names or turn markers around them.
    """
    if template is None or not template.strip():
        return True
    if not _JINJA_TAG.sub("", _GO_ACTION.sub("", template)).strip():
        actions = _GO_ACTION.findall(template)
        if actions and all(_GO_PROMPT_ONLY.fullmatch(action) for action in actions):
            return True
    if rendered is None:
        return False
    leftover = rendered
    for known in (*PROBE_CONTENTS, "<s>", "</s>"):
        leftover = leftover.replace(known, "")
    return not leftover.strip()


PROBE_CONTENTS = ("PROBE-SYSTEM-MESSAGE", "PROBE-USER-MESSAGE")
"""The message contents ``prompts.detect`` renders a template with."""
