"""Values computed from a model's fields, recomputed when those fields change.

``functools.cached_property`` stores its value in the instance's ``__dict__``, which
pydantic's ``model_copy`` copies: ``LlamaCpp(n_ctx=512).model_copy(update={"n_ctx": 2048})``
then still loaded with 512. A :func:`derived` property remembers the field values it was
computed from and computes again when they differ (after a copy with ``update=`` or an
assignment), so derived state can never go stale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, PrivateAttr

__all__ = ["DerivedState", "derived"]

T = TypeVar("T")


class DerivedState(BaseModel):
    """Holds the cache of the :func:`derived` properties of a model."""

    _derived: dict[str, tuple[tuple[Any, ...], Any]] = PrivateAttr(default_factory=dict)


def _snapshot(value: Any) -> Any:
    # A copy of containers, so that changing a dict field in place is noticed too.
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snapshot(v) for v in value]
    return value


def derived(*inputs: str) -> Callable[[Callable[[Any], T]], T]:
    """Decorate a method of a :class:`DerivedState` model computed from the fields ``inputs``.

    The result is a read-only property, cached until one of ``inputs`` changes.
    """

    def decorate(compute: Callable[[Any], T]) -> T:
        name = compute.__name__

        def get(self: DerivedState) -> T:
            key = tuple(getattr(self, field) for field in inputs)
            cached = self._derived.get(name)
            if cached is not None and cached[0] == key:
                return cached[1]
            value = compute(self)
            # A new dict rather than an update: copies of the model share the old one.
            self._derived = {**self._derived, name: (tuple(_snapshot(v) for v in key), value)}
            return value

        get.__doc__ = compute.__doc__
        get.__name__ = name
        return property(get)  # type: ignore[return-value]

    return decorate
