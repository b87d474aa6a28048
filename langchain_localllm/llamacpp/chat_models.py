"""``ChatLlamaCpp``: chat with a llama.cpp model in process, through llama-cpp-python."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from langchain_core.language_models import LangSmithParams
from langchain_core.messages import BaseMessage

from langchain_localllm._core.base.chat import ChatDelta
from langchain_localllm._core.base.peers import Ignored
from langchain_localllm._core.base.profile import ProfileReader
from langchain_localllm._core.decoding.pattern import Grammar as IRGrammar
from langchain_localllm._core.tools.calling import ToolRequest, answer_constraint, tool_request
from langchain_localllm._inprocess.chat import PROMPT_CALL_ARGS, InProcessChatModel, deltas_from_text
from langchain_localllm._inprocess.constrained import (
    constrained_deltas,
    prepare_tool_messages,
    tool_plan,
    uses_tools,
)
from langchain_localllm._inprocess.model_cache import LoadedModel
from langchain_localllm.llamacpp.budgeted import TokenBudget
from langchain_localllm.llamacpp.params import PEER_IGNORED, LlamaCppParams
from langchain_localllm.llamacpp.profile import LLAMACPP_PROFILE
from langchain_localllm.llamacpp.runtime import use_state_cache
from langchain_localllm.prompts.chat_template import render_chat_template

__all__ = ["ChatLlamaCpp"]


class ChatLlamaCpp(LlamaCppParams, InProcessChatModel):
    """Chat with a llama.cpp model running in this process, via llama-cpp-python.

    A drop-in replacement for ``langchain_community.chat_models.ChatLlamaCpp`` (the same
    arguments; those without effect here, such as ``f16_kv``, warn that they have none).
    Messages are laid out with the model's own chat template (the GGUF's
    ``tokenizer.chat_template``, rendered in a sandbox the way Hugging Face does), or a
    registered format (``chat_format="chatml"``); a model with neither is a typed error,
    never a guess. The model is shared with ``LlamaCpp`` instances of the same file, and a
    conversation's next turn reuses the evaluated prompt (also when another conversation
    used the model in between: states are kept per conversation, bounded by
    ``state_cache_bytes``). A stream kept half read never blocks the next call (it resumes
    intact when read again); a cancelled async call stops at once.

    Setup:
        ```bash
        pip install -U "langchain-localllm[llamacpp]"
        ```

    Key init args — model loading:
        model_path: str
            Path of the GGUF file.
        n_ctx: int | None
            Context window; None/0 take it from the model file.
        chat_format: str | None
            A registered chat format, for files without a chat template.

    Key init args — generation:
        temperature, max_tokens, top_p, top_k, min_p, repeat_penalty, seed
        stop: list[str] | None
            More stop sequences (the format's end-of-turn strings always apply).
        chat_template_kwargs: dict | None
            Template variables, e.g. ``{"enable_thinking": False}``.

    Instantiate:
        ```python
        from langchain_localllm import ChatLlamaCpp

        chat = ChatLlamaCpp(model_path="Qwen3-0.6B-Q8_0.gguf", temperature=0, max_tokens=512)
        ```

    Invoke:
        ```python
        message = chat.invoke([("system", "Be brief."), ("human", "What is 2 + 2?")])
        message.content                                # '2 + 2 = 4.'
        message.additional_kwargs["reasoning_content"]  # 'Okay, the user asks ...'
        message.usage_metadata  # {'input_tokens': 24, 'output_tokens': 61, 'total_tokens': 85}
        message.response_metadata["timings"]["predicted_per_second"]
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

    _provider: ClassVar[str] = "llamacpp"
    _profile_reader: ClassVar[ProfileReader | None] = LLAMACPP_PROFILE

    state_cache_bytes: int = 1 << 30
    """Memory for saved model states, one per recent conversation (llama-cpp-python's
    ``LlamaRAMCache``), so that interleaved conversations each resume without re-reading
    their history. 0 turns it off (then only the last conversation resumes)."""

    _peer_ignored: ClassVar[Mapping[str, Ignored]] = {
        **PEER_IGNORED,
        "suffix": Ignored(None, "a chat answer has no suffix to fill in (LlamaCpp(suffix=...) has one)"),
    }

    def _own_chat_template(self) -> str | None:
        return self.chat_template()

    def _special_token_texts(self) -> tuple[str, str]:
        model = self.client
        return _token_text(model, model.token_bos()), _token_text(model, model.token_eos())

    def _count_prompt(self, text: str) -> int:
        loaded = self.load()
        with loaded.lock:
            return len(_prompt_tokens(loaded.model, text))

    def _iter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> Iterator[ChatDelta]:
        request = tool_request(kwargs)
        if request.tools or request.answer_schema is not None or uses_tools(messages):
            yield from self._iter_tool_deltas(messages, stop, request, kwargs)
            return
        prompt = self._chat_prompt(messages, kwargs)
        settings = self._call_args(list(dict.fromkeys([*prompt.stop, *stop])), kwargs, extra=PROMPT_CALL_ARGS)
        loaded = self._load_for_chat()
        tokens = _prompt_tokens(loaded.model, prompt.text)
        yield from deltas_from_text(self._complete(tokens, settings, loaded), prompt)

    def _iter_tool_deltas(
        self, messages: list[BaseMessage], stop: list[str], request: ToolRequest, kwargs: dict[str, Any]
    ) -> Iterator[ChatDelta]:
        """A turn with tools or a response format: decoded under our grammars."""
        plan = tool_plan(self._chat_layout()[0], render_chat_template)
        messages, template_tools = prepare_tool_messages(messages, request.offered_tools, plan)
        if template_tools:
            kwargs["tools"] = template_tools
        prompt = self._chat_prompt(messages, kwargs)
        settings = self._call_args(list(dict.fromkeys([*prompt.stop, *stop])), kwargs, extra=PROMPT_CALL_ARGS)
        constraint = answer_constraint(request, settings.max_tokens)
        loaded = self._load_for_chat()

        def generate(text: str, grammar: str | IRGrammar | None, extra_stop: list[str]) -> Iterator[Any]:
            if isinstance(grammar, IRGrammar):  # the constraint's: valid within max_tokens
                call = dataclasses.replace(settings, grammar=None, budget=TokenBudget(grammar))
            else:
                call = dataclasses.replace(
                    settings,
                    stop=(*settings.stop, *extra_stop),
                    grammar=self._grammar(grammar, None) if grammar is not None else settings.grammar,
                )
            return self._complete(_prompt_tokens(loaded.model, text), call, loaded)

        yield from constrained_deltas(generate, prompt, request, plan, constraint)

    def _load_for_chat(self) -> LoadedModel:
        """The loaded model, keeping conversation states (``state_cache_bytes``)."""
        loaded = self.load()
        use_state_cache(loaded.model, self.state_cache_bytes)
        return loaded

    # --- LangChain metadata ----------------------------------------------------------------

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params.update(self._ls_sampling(self._stop_sequences(stop), kwargs))
        return params


def _token_text(model: Any, token: int) -> str:
    if token < 0:
        return ""
    return str(model.detokenize([token], special=True).decode("utf-8", errors="replace"))


def _prompt_tokens(model: Any, text: str) -> list[int]:
    """The prompt's tokens: BOS added when the model wants one, unless the template wrote it.

    Tokenizing reads only the vocabulary (llama-server tokenizes in its HTTP threads while
    it decodes), so it takes no lock: a call waiting for the model stays cancellable.
    """
    tokens = list(model.tokenize(text.encode("utf-8"), add_bos=False, special=True))
    # [BOS] when the model adds one, [] when it does not (tokenizing with add_bos=True a text that
    # already starts with BOS would make llama.cpp warn about a double BOS on stderr).
    bos = list(model.tokenize(b"", add_bos=True, special=True))[:1]
    return tokens if not bos or tokens[:1] == bos else bos + tokens
