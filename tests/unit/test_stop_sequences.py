"""Stop sequences applied to a stream: exact cut, never a partial stop string."""

from __future__ import annotations

from hypothesis import example, given, strategies as st

from langchain_localllm.gpt4all.stop_sequences import StopScanner

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


def expected(tokens: list[str], stops: list[str]) -> str:
    """What a streaming runtime returns: generation ends at the first token that completes a
    stop sequence, and the text is cut where the earliest stop found by then begins. (A longer
    stop that would have started earlier but is not complete yet cannot be known then:
    tokens ``b``, `` ``, `` `` with stops `` `` and ``b  `` give ``b``.)"""
    text = ""
    for token in tokens:
        text += token
        cuts = [text.find(s) for s in stops if s and s in text]
        if cuts:
            return text[: min(cuts)]
    return text


@given(
    st.lists(st.text(alphabet, max_size=4), max_size=12),
    st.lists(st.text(alphabet, min_size=1, max_size=3), max_size=3),
)
@example(tokens=["b", " ", " "], stops=[" ", "b  "])  # the stop that completes first wins
def test_output_is_text_cut_at_first_stop(tokens: list[str], stops: list[str]) -> None:
    out, stopped = run(tokens, stops)
    text = "".join(tokens)
    assert "".join(out) == expected(tokens, stops)
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
