"""``profile`` on every chat model: what the model and its runtime can do, read from them.

LangChain 1.x reads a chat model's ``profile`` (a ``ModelProfile`` dict): its
``SummarizationMiddleware`` takes ``max_input_tokens`` for fractional limits, and
``create_agent`` picks its structured-output strategy from ``structured_output``. Local
models are where this matters most (small contexts), and no static table can know them:
the context is what was loaded (``n_ctx``), what a server runs with (llama-server's per-slot
``n_ctx``, Ollama's ``num_ctx``, vLLM's ``max_model_len``), what the template can do.

Each chat class names a :class:`ProfileReader` (one per runtime folder, ``<runtime>/profile.py``):
the fields its values depend on and a function reading them from the model and the runtime.
:func:`attach_profile` gives the instance a :class:`LiveProfile`, a dict that reads nothing
until a value is asked for (no I/O at construction), then keeps what it read until one of
those fields changes (an assignment, or a ``model_copy(update=...)``). Values the user passes
(``profile={...}``) win key by key; keys a runtime cannot answer truthfully are left out
(``ModelProfile`` is ``total=False``: absent means unknown). A read that fails (a server not
running) raises its typed error and caches nothing, so the next read asks again.

The shared pieces of the readers live here too: the keys every local chat model answers the
same way (text in, text out, no files), :func:`output_limit` and :func:`template_reasons`.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.language_models import ModelProfile

from langchain_localllm.errors import LocalLLMError

__all__ = [
    "TEXT_CHAT",
    "LiveProfile",
    "ProfileReader",
    "attach_profile",
    "inprocess_profile",
    "output_limit",
    "rebind_profile",
    "template_reasons",
]

TEXT_CHAT: ModelProfile = {
    "text_inputs": True,
    "text_outputs": True,
    "pdf_inputs": False,
    "video_inputs": False,
    "image_outputs": False,
    "audio_outputs": False,
    "video_outputs": False,
    "attachment": False,
    "temperature": True,
}
"""What every chat model of this package answers alike: text in and out, no files, no
media out, a temperature."""

#: Texts by which a chat template shows that the model reasons before answering: the
#: thinking switch, past reasoning given back, or an opening marker of the known families
#: (DeepSeek/Qwen ``<think>``, Mistral ``[THINK]``, Seed, Command R7B, Kimi, gpt-oss).
_REASONING_SIGNS = (
    "enable_thinking",
    "reasoning_content",
    "<think>",
    "[THINK]",
    "<seed:think>",
    "<|START_THINKING|>",
    "◁think▷",
    "<|channel|>",
)


def template_reasons(template: str | None) -> bool:
    """Whether a chat template lays out reasoning (see ``_REASONING_SIGNS``)."""
    return bool(template) and any(sign in str(template) for sign in _REASONING_SIGNS)


def output_limit(max_tokens: int | None, context: int | None) -> int | None:
    """The most tokens an answer can have: the configured cap when there is one (and it is
    below the context), else the context (an answer cannot outgrow it)."""
    if isinstance(max_tokens, int) and max_tokens > 0 and (context is None or max_tokens < context):
        return max_tokens
    return context


def inprocess_profile(
    chat: Any, *, context: int, max_tokens: int | None, constrained: bool, name: str | None
) -> ModelProfile:
    """The profile of an in-process chat model (``ChatLlamaCpp``, ``ChatGPT4All``).

    ``context`` is the context the model is (or will be) loaded with; ``constrained`` says
    whether the runtime decodes under a grammar (forced tool calls, JSON schemas). Tool
    calling works with every template (its own tool syntax, else tools described in a
    system message); reasoning is reported when the template writes the markers the answer
    is split at (``reasoning`` content blocks). The runtimes read text only.
    """
    profile: ModelProfile = {
        **TEXT_CHAT,
        "max_input_tokens": context,
        "image_inputs": False,
        "image_url_inputs": False,
        "audio_inputs": False,
        "image_tool_message": False,
        "pdf_tool_message": False,
        "tool_calling": True,
        "tool_call_streaming": True,
        "tool_choice": constrained,
        "structured_output": constrained,
        "open_weights": True,
    }
    limit = output_limit(max_tokens, context)
    if limit is not None:
        profile["max_output_tokens"] = limit
    if name:
        profile["name"] = name
    try:
        template, fmt, _ = chat._chat_layout()
    except LocalLLMError:  # no template and no known format: calls say so; the rest is known
        return profile
    start = fmt.reasoning[0] if fmt is not None else "<think>"
    profile["reasoning_output"] = start in template
    return profile


@dataclass(frozen=True)
class ProfileReader:
    """How one runtime's chat class reads its profile."""

    inputs: tuple[str, ...]
    """The fields the values depend on: a change to any of them reads the profile again."""
    read: Callable[[Any], ModelProfile]
    """Reads the values from the model and the runtime (may do I/O; raises typed errors)."""


class LiveProfile(dict):
    """A chat model's ``profile``: a dict read from the model on first use.

    Every read of a value (``[]``, ``get``, ``in``, iteration, ``len``, ``dict(...)``, ``json``)
    first makes sure the values are current: read once, then again only when one of the
    reader's input fields of the owner changed. Truthiness, ``repr`` and ``==`` read nothing
    (a profile is never empty; ``repr`` shows what is known so far).
    """

    def __init__(self, owner: Any, reader: ProfileReader, overrides: Mapping[str, Any] | None) -> None:
        super().__init__()
        self._owner = owner
        self._reader = reader
        self.overrides: dict[str, Any] = dict(overrides or {})
        """The values the user passed (``profile={...}``): they win over what is read."""
        self._key: tuple[Any, ...] | None = None
        self._lock = threading.Lock()

    # --- reading ---------------------------------------------------------------------

    def _current(self) -> LiveProfile:
        key = tuple(_snapshot(getattr(self._owner, name, None)) for name in self._reader.inputs)
        if key != self._key:
            with self._lock:
                if key != self._key:
                    values = {**self._reader.read(self._owner), **self.overrides}
                    dict.clear(self)
                    dict.update(self, values)
                    self._key = key
        return self

    def refresh(self) -> LiveProfile:
        """Read the values again now (e.g. after the server was restarted with other settings)."""
        self._key = None
        return self._current()

    def __getitem__(self, key: str) -> Any:
        return dict.__getitem__(self._current(), key)

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self._current(), key, default)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self._current(), key)

    def __iter__(self) -> Iterator[str]:
        return dict.__iter__(self._current())

    def __len__(self) -> int:
        return dict.__len__(self._current())

    def keys(self) -> Any:
        return dict.keys(self._current())

    def values(self) -> Any:
        return dict.values(self._current())

    def items(self) -> Any:
        return dict.items(self._current())

    def copy(self) -> dict[str, Any]:
        return dict(self.items())

    def __or__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        return {**self.copy(), **other}

    # --- no reading -------------------------------------------------------------------

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        if self._key is not None:
            return dict.__repr__(self)
        return f"LiveProfile(read on first use, overrides={self.overrides!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LiveProfile):
            return self._reader is other._reader and self.overrides == other.overrides
        return isinstance(other, Mapping) and dict(self.items()) == dict(other)

    __hash__ = None

    def __setitem__(self, key: str, value: Any) -> None:
        self.overrides[key] = value
        dict.__setitem__(self, key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __copy__(self) -> LiveProfile:
        return LiveProfile(self._owner, self._reader, self.overrides)

    def __deepcopy__(self, memo: dict[int, Any]) -> LiveProfile:
        # Within a deep copy of the owner, pydantic has put the new owner in ``memo``; the
        # owner itself is never copied from here (a profile belongs to its chat model).
        owner = memo.get(id(self._owner), self._owner)
        return LiveProfile(owner, self._reader, copy.deepcopy(self.overrides, memo))

    def __reduce__(self) -> Any:
        return (LiveProfile, (self._owner, self._reader, self.overrides))


def _snapshot(value: Any) -> Any:
    """A comparable copy of a field value (containers copied, so in-place changes are seen)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _snapshot(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_snapshot(v) for v in value)
    if hasattr(value, "get_secret_value"):
        return ("secret", hash(value.get_secret_value()))
    return value


def attach_profile(chat: Any, reader: ProfileReader | None) -> None:
    """Give ``chat`` its :class:`LiveProfile` (over the ``profile`` the user passed, if any).

    Without a reader the user's profile stays as given (a plain dict or None).
    """
    given = chat.__dict__.get("profile")
    if reader is None or isinstance(given, LiveProfile):
        return
    chat.__dict__["profile"] = cast(ModelProfile, LiveProfile(chat, reader, given))


def rebind_profile(copied: Any) -> None:
    """After a shallow copy of a chat model: the copy's profile reads the copy, not the original."""
    profile = copied.__dict__.get("profile")
    if isinstance(profile, LiveProfile) and profile._owner is not copied:
        copied.__dict__["profile"] = LiveProfile(copied, profile._reader, profile.overrides)
