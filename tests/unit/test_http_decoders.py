"""The stream decoders shared by the sync and async HTTP paths."""

from __future__ import annotations

import json

import pytest

from langchain_localllm._core.stream_decoders import LineDecoder, NDJSONDecoder, SSEDecoder
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
