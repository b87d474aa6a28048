"""Constructor arguments of the classes ours replace, accepted so that old code runs unchanged.

Each class lists the peer arguments it has no field for: ``_peer_renamed`` (the same
setting under our name, e.g. ``request_timeout`` -> ``timeout``), ``_peer_ignored``
(settings with no effect here, each with the reason) and ``_peer_kwargs`` (a peer's dict
of arguments for its runtime, e.g. ``gpt4all_kwargs``, whose entries set our fields of the
same name or have no effect). An ignored argument given with a value other than the peer's
default (or None) warns :class:`~langchain_localllm.errors.UnsupportedParameterWarning`
saying it has no effect; given with the default, it changes nothing and is dropped silently.
A renamed argument sets our field unless that is given too.

This is the one place peer arguments are handled: a class lists its peers' arguments in
these tables, it does not write a validator of its own for them.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, model_validator

from langchain_localllm.errors import UnsupportedParameterWarning

__all__ = ["Ignored", "PeerArguments", "PeerKwargs", "warn_no_effect"]


@dataclass(frozen=True)
class Ignored:
    """A peer argument without effect here."""

    default: Any
    """The peer's default (passing it changes nothing, so it does not warn)."""
    reason: str
    """Why it has no effect (ends the warning)."""


@dataclass(frozen=True)
class PeerKwargs:
    """A peer's dict argument of keyword arguments for its runtime (kept as our field too)."""

    used: tuple[str, ...]
    """Keys that set our field of the same name (unless that field is given itself)."""
    reason: str
    """Why the other keys have no effect (ends their warning)."""


def warn_no_effect(owner: str, name: str, value: Any, reason: str, stacklevel: int | None = 2) -> None:
    """Warn that ``name=value`` has no effect in ``owner``; ``stacklevel=None`` points the
    warning at the first caller outside this package, pydantic and langchain-core (the
    user's constructor call, however deep the class's ``__init__`` chain)."""
    shown = repr(value) if len(repr(value)) <= 60 else type(value).__name__
    warnings.warn(
        f"{owner}: {name}={shown} has no effect here: {reason}.",
        UnsupportedParameterWarning,
        stacklevel=_user_stacklevel() if stacklevel is None else stacklevel + 1,
    )


def _user_stacklevel() -> int:
    """The ``stacklevel`` (for a ``warnings.warn`` in the caller's caller) of the first frame
    outside the package and the libraries that run its validators."""
    frame, level = sys._getframe(2), 2
    while frame.f_back is not None and frame.f_globals.get("__name__", "").partition(".")[0] in _INSIDE:
        frame, level = frame.f_back, level + 1
    return level


_INSIDE = frozenset({"langchain_localllm", "pydantic", "langchain_core"})


class PeerArguments(BaseModel):
    """Takes the peer arguments listed by the class before pydantic checks the rest."""

    _peer_renamed: ClassVar[Mapping[str, str]] = {}
    """Peer argument -> our field for the same setting."""
    _peer_ignored: ClassVar[Mapping[str, Ignored]] = {}
    """Peer arguments without effect here."""
    _peer_kwargs: ClassVar[Mapping[str, PeerKwargs]] = {}
    """Our fields that hold a peer's dict of runtime arguments -> what its keys do here."""

    @model_validator(mode="before")
    @classmethod
    def _take_peer_arguments(cls, values: Any) -> Any:
        if not isinstance(values, dict) or not (cls._peer_renamed or cls._peer_ignored or cls._peer_kwargs):
            return values
        values = dict(values)
        for old, new in cls._peer_renamed.items():
            if old in values:
                value = values.pop(old)
                if value is not None and values.get(new) is None:
                    values[new] = value
        for name, ignored in cls._peer_ignored.items():
            if name in values:
                value = values.pop(name)
                if value is not None and not _same(value, ignored.default):
                    warn_no_effect(cls.__name__, name, value, ignored.reason, stacklevel=None)
        for name, kwargs in cls._peer_kwargs.items():
            given = values.get(name)
            for key, value in given.items() if isinstance(given, Mapping) else ():
                if key in kwargs.used:
                    values.setdefault(key, value)
                else:
                    warn_no_effect(cls.__name__, f"{name}[{key!r}]", value, kwargs.reason, stacklevel=None)
        return values


def _same(value: Any, default: Any) -> bool:
    try:
        return bool(value == default)
    except Exception:
        return False
