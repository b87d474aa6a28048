"""``ChatLlamafile``: chat with a llamafile or llama.cpp ``llama-server`` (the llama-server dialect
of :class:`~langchain_localllm.openai_compatible.chat_models.ChatOpenAICompatible`)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from langchain_core.messages import BaseMessage
from pydantic import Field

from langchain_localllm._core.http_connection import BaseUrl
from langchain_localllm._core.http_errors import LLAMA_SERVER, ServerKind
from langchain_localllm.errors import LocalLLMError, UnsupportedParameterError
from langchain_localllm.openai_compatible.chat_models import ChatOpenAICompatible
from langchain_localllm.openai_compatible.server import ServerInfo

#: llama-server options of /v1/chat/completions beyond OpenAI's, as fields and per call.
_LLAMA_OPTIONS = ("cache_prompt", "n_probs", "reasoning_format", "top_k", "min_p", "repeat_penalty")


class ChatLlamafile(ChatOpenAICompatible):
    """Chat with a llamafile or llama.cpp ``llama-server`` through ``/v1/chat/completions``.

    The server renders the model's own chat template (``--jinja``, the default of current
    llama-server), parses reasoning (``reasoning_content``) and tool calls, and constrains
    output to JSON schemas with a grammar.

    Setup:
        ```bash
        ./model.llamafile --server --nobrowser --jinja      # http://localhost:8080
        # or: llama-server -m model.gguf --jinja --port 8080
        ```

    Key init args — generation params:
        max_tokens: int | None
            Most tokens per answer (256 by default).
        temperature: float | None
            Sampling temperature.
        reasoning_format: "auto" | "deepseek" | "none" | None
            How the server separates the model's thinking (``none`` leaves it in content).
        chat_template_kwargs: dict | None
            Template variables, e.g. ``{"enable_thinking": False}``.
        cache_prompt: bool | None
            Reuse the KV cache of the conversation's shared prefix (server default: on).
        n_probs: int | None
            Top-N token probabilities per generated token.

    Key init args — client params:
        base_url: str | list[str]
            Default ``http://localhost:8080``; a list makes a fleet.
        api_key: SecretStr | None
            The server's ``--api-key``.

    Instantiate:
        ```python
        from langchain_localllm import ChatLlamafile

        chat = ChatLlamafile(temperature=0.2)
        ```

    Invoke:
        ```python
        chat.invoke([("system", "Be brief."), ("human", "Name a prime number.")]).content
        ```

        ```
        '7'
        ```

    Stream:
        ```python
        for chunk in chat.stream("Tell me a joke"):
            print(chunk.content, end="", flush=True)
        ```

    Async:
        ```python
        await chat.ainvoke("Hello")
        ```

    Tools and structured output use the server's ``--jinja`` tool-call parsing and its
    JSON-schema grammars: ``chat.bind_tools([...], tool_choice="any")``,
    ``chat.with_structured_output(Person)``.
    """

    _server_kind: ClassVar[ServerKind] = LLAMA_SERVER
    _provider: ClassVar[str] = "llamafile"
    _health_path: ClassVar[str] = "/health"
    _env_prefix: ClassVar[str] = "LLAMA"
    _extra_call_params: ClassVar[frozenset[str]] = ChatOpenAICompatible._extra_call_params | frozenset(
        _LLAMA_OPTIONS
    )

    base_url: BaseUrl = "http://localhost:8080"
    """Root URL of the llamafile / llama-server, or a list of them (a fleet)."""

    dialect: str | None = "llama-server"
    """Always llama-server's."""

    reasoning_format: Literal["auto", "deepseek", "deepseek-legacy", "none"] | None = None
    """How the server extracts thinking into ``reasoning_content`` (None: the server's
    ``--reasoning-format``, ``auto`` by default; ``none`` leaves it in the content)."""

    cache_prompt: bool | None = None
    """Reuse the KV cache for the prefix shared with the previous request (server default: on)."""

    n_probs: int | None = Field(default=None, ge=0)
    """Top-N token probabilities of each generated token."""

    top_k: int | None = None
    """Sample from the k most likely tokens (0 disables)."""

    min_p: float | None = None
    """Minimum probability relative to the most likely token."""

    repeat_penalty: float | None = None
    """Penalty for repeated tokens (1.0 disables)."""

    def _chat_body(
        self, info: ServerInfo, messages: list[BaseMessage], stop: list[str], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        kwargs = dict(kwargs)
        options = {name: kwargs.pop(name, getattr(self, name)) for name in _LLAMA_OPTIONS}
        body = super()._chat_body(info, messages, stop, kwargs)
        body.update({name: value for name, value in options.items() if value is not None})
        return body

    def _translated_error(self, error: LocalLLMError) -> LocalLLMError:
        if "--jinja" in str(getattr(error, "server_message", "")):
            msg = (
                f"The llama-server at {self.client.base_url} was started without Jinja templates "
                f"({getattr(error, 'server_message', error)}); tools need them. Restart it with --jinja "
                "(and without --no-jinja)."
            )
            return UnsupportedParameterError(msg, url=getattr(error, "url", None), parameter="tools")
        return super()._translated_error(error)
