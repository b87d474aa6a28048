"""What ``Ollama`` and ``Llamafile`` send, seen by a loopback server that records requests."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from langchain_localllm import Llamafile, LlamafileEmbeddings, Ollama, OllamaEmbeddings
from langchain_localllm.errors import (
    InvalidParameterError,
    ServerResponseError,
    UnsupportedParameterError,
    UnsupportedParameterWarning,
)
from langchain_localllm.ollama.llms import ollama_base_url_from_env
from tests.support.fault_server import FaultServer, respond, stream

OLLAMA_ANSWER = (
    b'{"model":"m","created_at":"2024-05-24T20:19:45.363966Z","response":"Hi there","done":true,'
    b'"done_reason":"length","context":[1,2,3],"total_duration":4224430375,"load_duration":2037300208,'
    b'"prompt_eval_count":17,"prompt_eval_duration":177983000,"eval_count":63,"eval_duration":2007110000}'
)
LLAMA_ANSWER = (
    b'{"content":"Hi","stop":true,"model":"tiny.gguf","stop_type":"limit","stopping_word":"",'
    b'"tokens_predicted":2,"tokens_evaluated":5,"tokens_cached":0,"truncated":false,'
    b'"timings":{"prompt_n":5,"prompt_ms":1.5,"prompt_per_second":3333.3,"predicted_n":2,'
    b'"predicted_ms":2.0,"predicted_per_second":1000.0}}'
)


def sent(server: FaultServer) -> tuple[bytes, dict[str, Any]]:
    head, _, body = server.requests[-1].partition(b"\r\n\r\n")
    return head, json.loads(body)


def test_ollama_call_options_merge_with_instance_options() -> None:
    llm = Ollama(
        model="m",
        temperature=0.1,
        num_ctx=1024,
        options={"num_thread": 2},
        stop=["END"],
        streaming=False,
        system="be brief",
        keep_alive="1m",
    )
    with FaultServer(respond(200, OLLAMA_ANSWER)) as server:
        llm = llm.model_copy(update={"base_url": server.base_url})
        result = llm.generate(["hello"], stop=["STOP"], options={"seed": 5, "temperature": 0.3}, top_k=3)
    _, body = sent(server)
    assert body["model"] == "m"
    assert body["prompt"] == "hello"
    assert body["stream"] is False
    assert body["system"] == "be brief"
    assert body["keep_alive"] == "1m"
    assert body["options"] == {
        "temperature": 0.3,  # the call's options= wins
        "num_ctx": 1024,
        "num_thread": 2,
        "seed": 5,
        "top_k": 3,
        "stop": ["END", "STOP"],
    }
    info = result.generations[0][0].generation_info or {}
    assert result.generations[0][0].text == "Hi there"
    assert info["finish_reason"] == "length"  # the server's done_reason, not the stop list
    assert "context" not in info
    assert info["usage"] == {"prompt_tokens": 17, "completion_tokens": 63, "total_tokens": 80}
    assert info["timings"]["predicted_ms"] == pytest.approx(2007.11)
    assert info["timings"]["predicted_per_second"] == pytest.approx(63 / 2.00711)
    assert info["timings"]["load_ms"] == pytest.approx(2037.300208)
    assert result.llm_output == {"token_usage": info["usage"], "model_name": "m"}


def test_ollama_per_call_request_fields() -> None:
    with FaultServer(respond(200, OLLAMA_ANSWER)) as server:
        llm = Ollama(model="m", base_url=server.base_url, streaming=False, format="json")
        llm.invoke("x", raw=True, format={"type": "object"}, images=["aGk="])
    _, body = sent(server)
    assert body["raw"] is True
    assert body["format"] == {"type": "object"}
    assert body["images"] == ["aGk="]
    assert "options" not in body


def test_ollama_unknown_call_argument_is_rejected_with_a_suggestion() -> None:
    llm = Ollama(model="m")
    with pytest.raises(InvalidParameterError, match="did you mean 'temperature'"):
        llm.invoke("x", temprature=0.2)


def test_out_of_range_values_are_rejected_before_any_request() -> None:
    with pytest.raises(InvalidParameterError, match="temperature"):
        Ollama(model="m", temperature=-1)
    with pytest.raises(InvalidParameterError, match="top_p"):
        Llamafile().invoke("x", top_p=2.0)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (None, "http://localhost:11434"),
        ("", "http://localhost:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:12345", "http://127.0.0.1:12345"),
        (":5000", "http://127.0.0.1:5000"),
        ("gpu-box", "http://gpu-box:11434"),
        ("gpu-box:8000", "http://gpu-box:8000"),
        ("http://gpu-box", "http://gpu-box:80"),
        ("https://ollama.internal:443/", "https://ollama.internal:443"),
        ("https://ollama.internal/proxy/", "https://ollama.internal:443/proxy"),
        ("[::1]:9999", "http://[::1]:9999"),
        ("::1", "http://[::1]:11434"),
    ],
)
@pytest.mark.parametrize("cls", [Ollama, OllamaEmbeddings], ids=lambda c: c.__name__)
def test_ollama_host_environment_variable_is_read_alike_by_every_ollama_class(
    monkeypatch: pytest.MonkeyPatch, env: str | None, expected: str, cls: type
) -> None:
    # Regression: OllamaEmbeddings had its own reader (gpu-box -> port 80, :5000 -> http://:5000).
    if env is None:
        monkeypatch.delenv("OLLAMA_HOST", raising=False)
    else:
        monkeypatch.setenv("OLLAMA_HOST", env)
    assert ollama_base_url_from_env() == expected
    assert cls(model="m").base_url == expected


@pytest.mark.parametrize("cls", [Ollama, Llamafile])
def test_base_url_must_be_http(cls: type) -> None:
    with pytest.raises(InvalidParameterError, match="not an http"):
        cls(model="m", base_url="localhost:11434") if cls is Ollama else cls(base_url="ftp://x")


def test_llamafile_payload_is_bounded_and_complete() -> None:
    with FaultServer(respond(200, LLAMA_ANSWER)) as server:
        llm = Llamafile(
            base_url=server.base_url,
            streaming=False,
            temperature=0.0,
            seed=3,
            grammar='root ::= "a"',
            api_key="sekret",
            model_kwargs={"dry_multiplier": 0.5},
        )
        result = llm.generate(["hi"], stop=["\n"], n_probs=2)
    head, body = sent(server)
    assert b"Authorization: Bearer sekret" in head
    assert body == {
        "dry_multiplier": 0.5,
        "n_predict": 256,
        "temperature": 0.0,
        "seed": 3,
        "grammar": 'root ::= "a"',
        "n_probs": 2,
        "prompt": "hi",
        "stream": False,
        "stop": ["\n"],
    }
    info = result.generations[0][0].generation_info or {}
    assert info["finish_reason"] == "length"
    assert info["stop_type"] == "limit"
    assert info["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    assert info["timings"]["predicted_per_second"] == 1000.0
    assert info["model"] == "tiny.gguf"
    assert llm.model_name == "tiny.gguf"


def test_llamafile_old_server_final_event_with_booleans() -> None:
    old = (
        b'data: {"content":"x","stop":true,"stopped_eos":true,"stopped_limit":false,"tokens_predicted":1}\n\n'
    )
    with FaultServer(stream([old], "text/event-stream")) as server:
        result = Llamafile(base_url=server.base_url).generate(["p"])
    info = result.generations[0][0].generation_info or {}
    assert info["stop_type"] == "eos"
    assert info["finish_reason"] == "stop"


def test_llamafile_rejects_grammar_with_json_schema() -> None:
    with pytest.raises(InvalidParameterError, match="either grammar or json_schema"):
        Llamafile(grammar="root ::= x", json_schema={})
    with pytest.raises(InvalidParameterError, match="either grammar or json_schema"):
        Llamafile(grammar="root ::= x").invoke("p", json_schema={"type": "object"})


def test_llamafile_unknown_argument_is_not_silently_dropped() -> None:
    with pytest.raises(InvalidParameterError, match="did you mean 'grammar'"):
        Llamafile().invoke("p", gramar="root ::= x")
    with pytest.raises(InvalidParameterError, match="did you mean 'n_predict'"):
        Llamafile(n_predcit=5)


def test_proxy_environment_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy would be a connection to something other than base_url: never used.
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://10.255.255.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with FaultServer(respond(200, OLLAMA_ANSWER)) as server:
        assert Ollama(model="m", base_url=server.base_url, streaming=False).invoke("x") == "Hi there"
    assert len(server.requests) == 1


async def test_proxy_environment_is_ignored_async(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.255.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://10.255.255.1:9")
    with FaultServer(respond(200, LLAMA_ANSWER)) as server:
        assert await Llamafile(base_url=server.base_url, streaming=False).ainvoke("x") == "Hi"


def test_the_pooled_session_is_reused_across_calls() -> None:
    with FaultServer(respond(200, OLLAMA_ANSWER)) as server:
        llm = Ollama(model="m", base_url=server.base_url, streaming=False)
        llm.invoke("a")
        session = llm.client.sync_client
        llm.invoke("b")
        assert llm.client.sync_client is session
    assert len(server.requests) == 2


# --- token counting against Ollama, which has no tokenizer endpoint ------------------------


def test_ollama_token_ids_say_plainly_why_not() -> None:
    with pytest.raises(UnsupportedParameterError, match="no tokenizer endpoint") as info:
        Ollama(model="m", base_url="http://127.0.0.1:9").get_token_ids("hello")
    assert "get_num_tokens" in str(info.value)


def test_ollama_counts_each_distinct_text_once_on_the_server() -> None:
    with FaultServer(respond(200, OLLAMA_ANSWER)) as server:
        llm = Ollama(model="m", base_url=server.base_url)
        assert llm.get_num_tokens("hello") == 17  # prompt_eval_count
        assert llm.get_num_tokens("hello") == 17
        _, body = sent(server)
    assert len(server.requests) == 1
    assert body["raw"] is True and body["options"]["num_predict"] == 1


def test_chains_estimate_ollama_tokens_instead_of_running_the_model() -> None:
    # Regression: the chains' counter called Ollama.get_num_tokens, one generation per chunk.
    from langchain_localllm.chains._llm import approximate_tokens, token_counter

    with FaultServer(respond(200, OLLAMA_ANSWER)) as server:
        count = token_counter(Ollama(model="m", base_url=server.base_url).bind(stop=["\n"]))
        assert count("some text to split") == approximate_tokens("some text to split")
    assert server.requests == []


# --- 401/403: the fix names arguments the class accepts ------------------------------------


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize(
    "make",
    [
        lambda url: Ollama(model="m", base_url=url),
        lambda url: OllamaEmbeddings(model="m", base_url=url),
        lambda url: Llamafile(base_url=url),
        lambda url: LlamafileEmbeddings(base_url=url),
    ],
    ids=["Ollama", "OllamaEmbeddings", "Llamafile", "LlamafileEmbeddings"],
)
def test_refused_request_names_arguments_the_class_accepts(status: int, make: Any) -> None:
    # Regression: Ollama's message told users to pass api_key=..., which Ollama rejects.
    with FaultServer(respond(status, b'{"error": "unauthorized"}')) as server:
        model = make(server.base_url)
        with pytest.raises(ServerResponseError) as info:
            model.invoke("hi") if isinstance(model, Ollama | Llamafile) else model.embed_query("hi")
    hint = str(info.value).partition("unauthorized")[2]
    named = re.findall(r"\b(\w+)=", hint)
    assert named
    assert set(named) <= set(type(model).model_fields), named


# --- langchain-ollama / langchain-community arguments that are honoured --------------------

EMBED_ANSWER = b'{"model": "m", "embeddings": [[0.6, 0.8]]}'


def test_ollama_honours_reasoning_client_kwargs_headers_and_basic_auth() -> None:
    with FaultServer(respond(200, OLLAMA_ANSWER)) as server:
        llm = Ollama(
            model="m",
            base_url=server.base_url,
            streaming=False,
            reasoning=True,
            tfs_z=0.9,
            client_kwargs={"headers": {"X-Team": "nlp"}},
            auth=("ann", "secret"),
        )
        llm.invoke("hi")
        head, body = sent(server)
    assert body["think"] is True
    assert body["options"]["tfs_z"] == 0.9
    assert b"\r\nX-Team: nlp\r\n" in head
    assert b"\r\nAuthorization: Basic YW5uOnNlY3JldA==\r\n" in head


def test_ollama_embeddings_honour_dimensions_options_and_instructions() -> None:
    with FaultServer(respond(200, EMBED_ANSWER)) as server:
        embeddings = OllamaEmbeddings(
            model="m",
            base_url=server.base_url,
            dimensions=2,
            num_ctx=1024,
            model_kwargs={"num_batch": 8},
            embed_instruction="passage: ",
            query_instruction="query: ",
        )
        embeddings.embed_documents(["text"])
        _, document = sent(server)
        embeddings.embed_query("question")
        _, query = sent(server)
    assert document["dimensions"] == 2
    assert document["options"] == {"num_ctx": 1024, "num_batch": 8}
    assert (document["input"], query["input"]) == (["passage: text"], ["query: question"])


@pytest.mark.parametrize("cls", [Ollama, OllamaEmbeddings], ids=lambda c: c.__name__)
def test_validate_model_on_init_asks_the_server(cls: type) -> None:
    from langchain_localllm.errors import ModelNotFoundError

    with FaultServer(respond(404, b'{"error": "model \'m\' not found"}')) as server:
        cls(model="m", base_url=server.base_url)  # not asked by default
        assert server.requests == []
        with pytest.raises(ModelNotFoundError, match="ollama pull m"):
            cls(model="m", base_url=server.base_url, validate_model_on_init=True)
    assert server.requests[0].startswith(b"POST /api/show ")


def test_client_kwargs_other_than_headers_warn_that_they_have_no_effect() -> None:
    with pytest.warns(UnsupportedParameterWarning, match=r"client_kwargs\['verify'\]=False has no effect"):
        Ollama(model="m", client_kwargs={"verify": False})


# --- /api/show, asked once per connection -----------------------------------------------------

SHOW_ANSWER = json.dumps({"template": "{{ .Prompt }}", "parameters": "num_ctx 300", "details": {}}).encode()


def test_chat_ollama_reads_show_through_the_ollama_client_once_per_connection() -> None:
    from langchain_localllm import ChatOllama

    with FaultServer(respond(200, SHOW_ANSWER)) as server:
        chat = ChatOllama(model="m", base_url=server.base_url)
        assert chat.chat_template() == "{{ .Prompt }}"
        assert chat.get_context_window() == 300
        assert chat.model_copy().get_context_window() == 300  # same connection: not asked again
        shows = [r for r in server.requests if r.startswith(b"POST /api/show ")]
        assert len(shows) == 1 and server.requests == shows  # /api/show only: no Ollama LLM's calls
        moved = chat.model_copy(update={"client_kwargs": {"headers": {"X-Team": "nlp"}}})
        assert moved.chat_template() == "{{ .Prompt }}"
        assert len(server.requests) == 2 and b"\r\nX-Team: nlp\r\n" in server.requests[-1]
        other = chat.model_copy(update={"model": "m2"})
        assert other.get_context_window() == 300
        assert json.loads(server.requests[-1].partition(b"\r\n\r\n")[2]) == {"model": "m2"}
