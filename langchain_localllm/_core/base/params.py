"""Argument checks that raise :class:`~langchain_localllm.errors.InvalidParameterError`.

Pydantic would wrap our typed errors in its ``ValidationError``; these checks run
after pydantic and at call time, so users get one error type for a bad value.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from langchain_localllm.errors import InvalidParameterError

#: name -> (lowest allowed, whether the lowest is allowed, highest or None, fix hint)
_RULES: dict[str, tuple[float, bool, float | None, str]] = {
    "temperature": (0.0, True, None, "use 0 for greedy decoding"),
    "temp": (0.0, True, None, "use 0 for greedy decoding"),
    "top_p": (0.0, True, 1.0, "use a probability in [0, 1]"),
    "min_p": (0.0, True, 1.0, "use a probability in [0, 1]"),
    "top_k": (0.0, True, None, "use 0 to disable top-k"),
    "repeat_penalty": (0.0, True, None, "1.0 disables the penalty"),
    "max_tokens": (0.0, False, None, "use a positive count, or None/-1 for no limit"),
    "num_predict": (-2.0, True, None, "use a positive count, -1 for no limit"),
    "n_predict": (-1.0, True, None, "use a positive count, -1 for no limit"),
    "n_ctx": (0.0, True, None, "use 0 for the model's own context length"),
    "num_ctx": (1.0, True, None, "use a positive context length"),
    "n_batch": (1.0, True, None, "use a positive batch size such as 512"),
    "n_threads": (1.0, True, None, "use a positive count, or None for automatic"),
    "num_thread": (1.0, True, None, "use a positive count, or None for automatic"),
}


def check_params(values: Mapping[str, Any], owner: str) -> None:
    """Check the numeric parameters of ``values`` that have a rule; None means unset."""
    for name, value in values.items():
        rule = _RULES.get(name)
        if rule is None or value is None or isinstance(value, bool):
            continue
        low, inclusive, high, hint = rule
        if name in ("max_tokens",) and value == -1:
            continue  # -1: no limit, as llama.cpp spells it
        too_low = value < low if inclusive else value <= low
        if too_low or (high is not None and value > high):
            bound = f">= {low:g}" if inclusive else f"> {low:g}"
            if high is not None:
                bound += f" and <= {high:g}"
            msg = f"{owner}: {name}={value!r} is out of range (must be {bound}); {hint}."
            raise InvalidParameterError(msg, parameter=name, value=value)


def raise_from_validation_error(error: ValidationError, owner: str, fields: Iterable[str]) -> None:
    """Re-raise pydantic's error as :class:`InvalidParameterError` with a did-you-mean."""
    known = list(fields)
    lines = []
    for item in error.errors():
        name = ".".join(str(p) for p in item.get("loc", ())) or "(arguments)"
        if item.get("type") == "extra_forbidden":
            close = difflib.get_close_matches(name, known, n=1)
            hint = (
                f"; did you mean {close[0]!r}?" if close else f"; known arguments: {', '.join(sorted(known))}"
            )
            lines.append(f"unknown argument {name!r}{hint}")
        else:
            lines.append(f"{name}: {item.get('msg')} (got {item.get('input')!r})")
    raise InvalidParameterError(f"{owner}: " + "; ".join(lines), errors=error.errors()) from error
