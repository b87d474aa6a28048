"""Stop sequences applied to a stream: exact cut, never a partial stop string."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from langchain_localllm._core.stop_sequences import StopScanner

alphabet = st.sampled_from("ab \n#")


def run(tokens: list[str], stops: list[str]) -> tuple[list[str], bool]:
    scanner = StopScanner(stops)
    out = []
    for token in tokens:
        piece = scanner.feed(token)
        if piece:
            out.append(piece)
        if scanner.stopped:
            break
    if tail := scanner.flush():
        out.append(tail)
    return out, scanner.stopped


def expected(text: str, stops: list[str]) -> str:
    cuts = [text.find(s) for s in stops if s and s in text]
    return text[: min(cuts)] if cuts else text


@given(
    st.lists(st.text(alphabet, max_size=4), max_size=12),
    st.lists(st.text(alphabet, min_size=1, max_size=3), max_size=3),
)
def test_output_is_text_cut_at_first_stop(tokens: list[str], stops: list[str]) -> None:
    out, stopped = run(tokens, stops)
    text = "".join(tokens)
    assert "".join(out) == expected(text, stops)
    assert stopped == any(s in text for s in stops)


@given(
    st.lists(st.text(alphabet, max_size=4), max_size=12),
    st.lists(st.text(alphabet, min_size=1, max_size=3), max_size=3),
)
def test_emitted_text_never_contains_a_stop(tokens: list[str], stops: list[str]) -> None:
    out, _ = run(tokens, stops)
    assert not any(s in "".join(out) for s in stops)


def test_stops_at_the_token_that_completes_the_sequence() -> None:
    scanner = StopScanner(["###"])
    assert scanner.feed("Answer #") == "Answer "
    assert scanner.feed("#") == ""
    assert not scanner.stopped
    assert scanner.feed("# more") == ""
    assert scanner.stopped
    assert scanner.feed("after") == ""


def test_held_text_is_released_when_it_is_not_a_stop() -> None:
    scanner = StopScanner(["\nUser:"])
    assert scanner.feed("hi\nUs") == "hi"
    assert scanner.feed("a") == "\nUsa"
    assert scanner.flush() == ""
