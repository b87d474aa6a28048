"""``ChatGPT4All``: chat with a GPT4All model in process, through the gpt4all package."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from langchain_core.language_models import LangSmithParams
from langchain_core.messages import BaseMessage

from langchain_localllm._core.base.chat import ChatDelta
from langchain_localllm._core.base.profile import ProfileReader
from langchain_localllm._core.gguf.reader import read_gguf
from langchain_localllm._core.tools.calling import NoConstrainedDecoding, answer_constraint, tool_request
from langchain_localllm._inprocess.chat import PROMPT_CALL_ARGS, InProcessChatModel, deltas_from_text
from langchain_localllm._inprocess.constrained import (
    constrained_deltas,
    prepare_tool_messages,
    tool_plan,
    uses_tools,
)
from langchain_localllm.gpt4all.params import GPT4AllParams
from langchain_localllm.gpt4all.profile import GPT4ALL_PROFILE
from langchain_localllm.gpt4all.runtime import eos_text, generate_locked
from langchain_localllm.prompts.chat_template import render_chat_template

__all__ = ["ChatGPT4All"]


#: How ChatGPT4All carries out a constrained answer: it cannot (the tool layer's strategy).
_NO_GRAMMARS = NoConstrainedDecoding(
    "ChatGPT4All",
    "gpt4all has no grammars",
    "Load the same GGUF file with ChatLlamaCpp(model_path=...), which enforces it with a grammar, "
    "or bind tools with tool_choice='auto'.",
)


class ChatGPT4All(GPT4AllParams, InProcessChatModel):
    """Chat with a GPT4All model running in this process, via the gpt4all package.

    Messages are laid out with the model's own chat template (the GGUF's
    ``tokenizer.chat_template``, rendered in a sandbox the way Hugging Face does) or a
    registered format (``chat_format="chatml"``); a model with neither is a typed error,
    never a guess. The whole conversation is sent as one raw prompt, so gpt4all's own
    (older, Jinja-subset) chat session is not used and the history is the messages given.
    Reasoning (``<think>...</think>``) is split into ``reasoning_content``.

    Setup:
        ```bash
        pip install -U "langchain-localllm[gpt4all]"
        ```

    Key init args:
        model: str
            Path of the GGUF file, or its file name inside ``model_path``.
        n_ctx: int
            Context window (2048).
        max_tokens, temp, top_k, top_p, min_p, repeat_penalty: sampling
        chat_format: str | None
            A registered chat format, for files without a chat template.

    Instantiate:
        ```python
        from langchain_localllm import ChatGPT4All

        chat = ChatGPT4All(model="/models/qwen2.5-0.5b-instruct-q4_0.gguf", temp=0)
        ```

    Invoke:
        ```python
        message = chat.invoke([("system", "Be brief."), ("human", "Name a planet.")])
        message.content         # 'Mars.'
        message.usage_metadata  # {'input_tokens': 22, 'output_tokens': 3, 'total_tokens': 25}
        ```

    Stream:
        ```python
        for chunk in chat.stream("Tell me a story"):
            print(chunk.content, end="", flush=True)
        ```

    Async:
        ```python
        await chat.ainvoke("Hello")
        async for chunk in chat.astream("Hello"):
            print(chunk.content, end="")
        ```
    """

    _provider: ClassVar[str] = "gpt4all"
    _profile_reader: ClassVar[ProfileReader | None] = GPT4ALL_PROFILE

    def _own_chat_template(self) -> str | None:
        return self.chat_template()

    def _special_token_texts(self) -> tuple[str, str]:
        # gpt4all adds BOS itself when it tokenizes the prompt: templates get none. The EOS
        # text (templates close past assistant turns with it) comes from the vocabulary.
        return "", eos_text(self.model_file)

    def _count_prompt(self, text: str) -> int:
        # gpt4all tokenizes the prompt itself (it has no tokenizer API): the vocabulary's own
        # count plus BOS. gpt4all 2.8 reports 2 prompt tokens more than that (measured).
        bos = read_gguf(self.model_file).metadata.get("tokenizer.ggml.add_bos_token", True)
        return len(self.get_token_ids(text)) + int(bool(bos))

    def _iter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> Iterator[ChatDelta]:
        request = tool_request(kwargs)
        constraint = answer_constraint(request, None)
        if constraint is not None:
            _NO_GRAMMARS.fields(constraint)  # a typed refusal
        if request.tools or uses_tools(messages):
            plan = tool_plan(self._chat_layout()[0], render_chat_template)
            messages, template_tools = prepare_tool_messages(messages, request.offered_tools, plan)
            if template_tools:
                kwargs["tools"] = template_tools
        else:
            plan = None
        prompt = self._chat_prompt(messages, kwargs)
        args = self._call_args(kwargs, extra=PROMPT_CALL_ARGS)
        stops = list(dict.fromkeys([*prompt.stop, *stop]))
        loaded = self.load()
        with loaded.lock:
            if plan is None:
                chunks = generate_locked(loaded.model, prompt.text, args, stops, self.model_name)
                yield from deltas_from_text(((c.text, c.generation_info) for c in chunks), prompt)
                return

            def generate(text: str, grammar: object, extra_stop: list[str]) -> Iterator[Any]:
                pieces = generate_locked(loaded.model, text, args, [*stops, *extra_stop], self.model_name)
                for chunk in pieces:
                    yield chunk.text, chunk.generation_info

            yield from constrained_deltas(generate, prompt, request, plan, None, constrain=False)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params.update(self._ls_sampling(self._stop_sequences(stop), kwargs))
        return params
