"""The stream decoders shared by the sync and async HTTP paths."""

from __future__ import annotations

import json

import pytest

from langchain_localllm._core.http.decoders import LineDecoder, NDJSONDecoder, SSEDecoder
from langchain_localllm.errors import MalformedResponseError

URL = "http://127.0.0.1:1/x"


def _feed_in_pieces(decoder: NDJSONDecoder | SSEDecoder, data: bytes, size: int) -> list[object]:
    out: list[object] = []
    for i in range(0, len(data), size):
        out.extend(decoder.feed(data[i : i + size]))
    out.extend(decoder.close())
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_line_decoder_is_independent_of_chunk_boundaries(size: int) -> None:
    data = "one\r\ntwo\nthree \u00e9\u2603\rfour".encode()
    decoder = LineDecoder()
    lines: list[str] = []
    for i in range(0, len(data), size):
        lines.extend(decoder.feed(data[i : i + size]))
    lines.extend(decoder.flush())
    assert lines == ["one", "two", "three \u00e9\u2603", "four"]


@pytest.mark.parametrize("size", [1, 5, 4096])
def test_ndjson_objects_across_chunks(size: int) -> None:
    objects = [{"response": "caf\u00e9", "done": False}, {"response": "", "done": True, "eval_count": 2}]
    data = b"".join(json.dumps(o).encode() + b"\n" for o in objects) + b"\n"
    assert _feed_in_pieces(NDJSONDecoder(URL), data, size) == objects


def test_ndjson_last_line_without_newline() -> None:
    decoder = NDJSONDecoder(URL)
    assert list(decoder.feed(b'{"a": 1}\n{"b"')) == [{"a": 1}]
    assert list(decoder.feed(b": 2}")) == []
    assert list(decoder.close()) == [{"b": 2}]


def test_ndjson_garbage_line_is_a_typed_error() -> None:
    decoder = NDJSONDecoder(URL)
    with pytest.raises(MalformedResponseError, match="not valid JSON") as info:
        list(decoder.feed(b'{"response": "a", "done": false}\n<html>oops</html>\n'))
    assert info.value.url == URL
    assert "<html>" in info.value.line
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("size", [1, 3, 4096])
def test_sse_events(size: int) -> None:
    data = (
        b": ping\n\n"
        b'data: {"content": "a", "stop": false}\n\n'
        b"event: message\nid: 7\n"
        b'data: {"content":\ndata: "b", "stop": false}\n\n'
        b'data:{"content": "", "stop": true}\r\n\r\n'
        b"data: [DONE]\n\n"
    )
    events = _feed_in_pieces(SSEDecoder(URL), data, size)
    assert events == [
        {"content": "a", "stop": False},
        {"content": "b", "stop": False},
        {"content": "", "stop": True},
    ]


def test_sse_event_without_final_blank_line_is_dispatched_at_close() -> None:
    decoder = SSEDecoder(URL)
    assert list(decoder.feed(b'data: {"content": "x"}')) == []
    assert list(decoder.close()) == [{"content": "x"}]


def test_sse_accepts_bare_json_lines_of_old_llamafiles() -> None:
    decoder = SSEDecoder(URL)
    assert list(decoder.feed(b'{"content": "x", "stop": true}\n')) == [{"content": "x", "stop": True}]


def test_sse_garbage_data_is_a_typed_error() -> None:
    with pytest.raises(MalformedResponseError, match="server-sent event"):
        list(SSEDecoder(URL).feed(b"data: {not json\n\n"))


# --- bounds: linear work, a size limit per line and per event -----------------------------

MiB = 1 << 20


def test_line_decoding_work_is_linear_in_the_line_length() -> None:
    # Regression: every chunk rescanned the whole buffered line (8/16/32/64 MB lines took
    # 0.5/1.6/6.8/30 s). ``work`` counts the bytes the decoder scans or copies.
    def work(size: int) -> int:
        decoder = LineDecoder(max_line_bytes=64 * MiB)
        chunk = b"x" * (64 * 1024)
        for _ in range(size // len(chunk)):
            assert decoder.feed(chunk) == []
        (line,) = decoder.feed(b"\n")
        assert len(line) == size
        return decoder.work

    small, large = work(8 * MiB), work(32 * MiB)
    assert large <= 2 * (32 * MiB + 1)  # each byte scanned once, copied once when the line ends
    assert large / small < 4.1  # four times the bytes, four times the work (quadratic: 16 times)


def test_a_line_above_the_limit_is_a_typed_error_naming_the_setting() -> None:
    decoder = LineDecoder(max_line_bytes=100, url=URL)
    assert decoder.feed(b"a" * 100 + b"\n") == ["a" * 100]  # exactly at the limit: accepted
    decoder.feed(b"b" * 60)
    with pytest.raises(MalformedResponseError, match="max_event_bytes=") as info:
        decoder.feed(b"b" * 41)  # 101 bytes without an end, split over two chunks
    assert info.value.limit == 100
    assert info.value.url == URL
    assert isinstance(info.value, ValueError)


def test_a_complete_line_above_the_limit_in_one_chunk_is_refused_too() -> None:
    with pytest.raises(MalformedResponseError, match="stream line larger than 10 bytes"):
        NDJSONDecoder(URL, max_event_bytes=10).feed(b'{"a": 1}\n{"response": "0123456789"}\n')


def test_the_sse_limit_is_per_event_not_per_stream() -> None:
    decoder = SSEDecoder(URL, max_event_bytes=64)
    event = b'data: {"content": "' + b"z" * 30 + b'"}\n\n'
    assert len(decoder.feed(event * 20)) == 20  # many events, each under the limit
    with pytest.raises(MalformedResponseError, match="server-sent event larger than 64 bytes"):
        decoder.feed(b"data: " + b"z" * 40 + b"\ndata: " + b"z" * 40 + b"\n")  # one event of two lines


def test_deeply_nested_json_is_a_typed_error() -> None:
    with pytest.raises(MalformedResponseError, match="nested too deeply"):
        NDJSONDecoder(URL).feed(b"[" * 100_000 + b"\n")


@pytest.mark.parametrize(
    ("make", "pieces"),
    [
        (
            SSEDecoder,
            [
                b'data: {"content": "caf\xc3\xa9"}\n\n',
                b'data: {"content": "bad \xff byte"}\n\n',
                b"data: [DONE]\n\n",
            ],
        ),
        (NDJSONDecoder, [b'{"response": "caf\xc3\xa9"}\n', b"\n", b'{"response": "bad \xff byte"}\n']),
    ],
)
def test_one_event_per_chunk_decodes_as_any_other_split(
    make: type[NDJSONDecoder | SSEDecoder], pieces: list[bytes]
) -> None:
    # Servers send one event per chunk: that common case is decoded without the line splitter,
    # and must give what the byte-by-byte path gives (invalid UTF-8 replaced the same way).
    whole: list[object] = []
    decoder = make(URL)
    for piece in pieces:
        whole.extend(decoder.feed(piece))
    whole.extend(decoder.close())
    assert whole == _feed_in_pieces(make(URL), b"".join(pieces), 1)
    assert len(whole) == 2
