"""The ``timings`` entry of ``generation_info``, built one way for every backend.

Keys follow llama-server's ``timings`` object: ``prompt_n``, ``prompt_ms``,
``prompt_per_second``, ``predicted_n``, ``predicted_ms``, ``predicted_per_second``.
Unknown values are left out; ``TimingsCallbackHandler`` reads these keys.
"""

from __future__ import annotations

from typing import Any


def per_second(count: Any, ms: float | None) -> float | None:
    """Tokens per second from a count and milliseconds (None when unknown or zero time)."""
    if not isinstance(count, int) or ms is None or ms <= 0:
        return None
    return count * 1000.0 / ms


def timings_info(
    prompt_n: int | None,
    prompt_ms: float | None,
    predicted_n: int | None,
    predicted_ms: float | None,
    *,
    predicted_rate_n: int | None = None,
) -> dict[str, Any]:
    """The timings dict. ``predicted_rate_n`` counts the tokens timed by ``predicted_ms``
    when that differs from ``predicted_n`` (timed from the first token: one fewer)."""
    rate_n = predicted_n if predicted_rate_n is None else predicted_rate_n
    values = {
        "prompt_n": prompt_n,
        "prompt_ms": prompt_ms,
        "prompt_per_second": per_second(prompt_n, prompt_ms),
        "predicted_n": predicted_n,
        "predicted_ms": predicted_ms,
        "predicted_per_second": per_second(rate_n, predicted_ms),
    }
    return {key: value for key, value in values.items() if value is not None}
