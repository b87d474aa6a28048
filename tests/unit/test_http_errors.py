"""Error bodies of llama.cpp, Ollama and old llamafiles become typed errors with a fix."""

from __future__ import annotations

import json

from langchain_localllm._core.http.errors import (
    LLAMA_SERVER,
    OLLAMA,
    error_from_response,
    error_from_stream_payload,
    parse_error_payload,
)
from langchain_localllm.errors import (
    ContextLengthExceededError,
    GenerationError,
    InvalidParameterError,
    LocalLLMError,
    ModelNotFoundError,
    ServerResponseError,
)

URL = "http://127.0.0.1:8080/completion"


def test_llama_cpp_context_exceeded_envelope_keeps_the_counts() -> None:
    body = json.dumps(
        {
            "error": {
                "code": 400,
                "message": "request (300 tokens) exceeds the available context size (256 tokens)",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 300,
                "n_ctx": 256,
            }
        }
    ).encode()
    error = error_from_response(400, body, URL, LLAMA_SERVER)
    assert isinstance(error, ContextLengthExceededError)
    assert isinstance(error, ValueError)
    assert (error.prompt_tokens, error.n_ctx) == (300, 256)
    assert "300 tokens" in str(error)
    assert "-c N" in str(error)


def test_ollama_404_model_not_found_suggests_pull() -> None:
    error = error_from_response(
        404, b'{"error":"model \'llama3.2:3b\' not found"}', URL, OLLAMA, model="llama3.2:3b"
    )
    assert isinstance(error, ModelNotFoundError)
    assert isinstance(error, LookupError)
    assert "ollama pull llama3.2:3b" in str(error)
    assert ".pull()" in str(error)
    assert error.status_code == 404


def test_older_ollama_not_found_wording() -> None:
    body = b'{"error":"model \'x\' not found, try pulling it first"}'
    assert isinstance(error_from_response(404, body, URL, OLLAMA, model="x"), ModelNotFoundError)


def test_404_without_model_means_wrong_server() -> None:
    error = error_from_response(404, b"404 page not found", URL, LLAMA_SERVER)
    assert type(error) is ServerResponseError
    assert "Is base_url the address of a" in str(error)


def test_plain_text_error_of_old_llamafile() -> None:
    error = error_from_response(500, b"Internal Server Error: slot unavailable", URL, LLAMA_SERVER)
    assert isinstance(error, ServerResponseError)
    assert error.status_code == 500
    assert error.body == "Internal Server Error: slot unavailable"
    assert "slot unavailable" in str(error)


def test_html_error_page_is_reduced_to_text() -> None:
    error = error_from_response(502, b"<html><body><h1>Bad Gateway</h1></body></html>", URL, OLLAMA)
    assert error.server_message == "Bad Gateway"


def test_invalid_request_is_an_invalid_parameter_error() -> None:
    body = b'{"error":{"code":400,"message":"Failed to parse grammar","type":"invalid_request_error"}}'
    error = error_from_response(400, body, URL, LLAMA_SERVER)
    assert isinstance(error, InvalidParameterError)
    assert "Failed to parse grammar" in str(error)


def test_loading_model_503() -> None:
    body = b'{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}'
    error = error_from_response(503, body, URL, LLAMA_SERVER)
    assert isinstance(error, ServerResponseError)
    assert "still loading" in str(error)


def test_mid_stream_errors_in_both_dialects() -> None:
    for payload in ({"error": "runner crashed"}, {"error": {"code": 500, "message": "runner crashed"}}):
        info = parse_error_payload(payload)
        assert info is not None
        error = error_from_stream_payload(info, URL, OLLAMA, partial_text="abc")
        assert isinstance(error, GenerationError)
        assert isinstance(error, LocalLLMError)
        assert error.partial_text == "abc"
        assert "runner crashed" in str(error)


def test_payload_without_error_is_not_an_error() -> None:
    assert parse_error_payload({"content": "x", "stop": False}) is None
    assert parse_error_payload(["error"]) is None
