"""Embeddings without a runtime: batching, checks, the HTTP protocols, and langchain-tests' unit suite."""

from __future__ import annotations

import math
from typing import Any

import pytest
from langchain_tests.unit_tests import EmbeddingsUnitTests

from langchain_localllm import (
    GPT4AllEmbeddings,
    InvalidParameterError,
    LlamaCppEmbeddings,
    LlamafileEmbeddings,
    LocalLLMError,
    MalformedResponseError,
    ModelNotFoundError,
    OllamaEmbeddings,
    ServerResponseError,
    UnsupportedParameterError,
    UnsupportedParameterWarning,
)
from langchain_localllm._core.base.embeddings import LocalEmbeddings, l2_normalize
from langchain_localllm._core.server.embeddings import Call
from langchain_localllm.errors import InvalidModelFileError
from langchain_localllm.llamafile.embeddings import _parse_batch

# --- langchain-tests' standard unit tests (construction without loading or connecting) ---


class TestLlamaCppEmbeddingsStandard(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[LlamaCppEmbeddings]:
        return LlamaCppEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model_path": "/models/not-loaded-by-these-tests.gguf"}


class TestGPT4AllEmbeddingsStandard(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[GPT4AllEmbeddings]:
        return GPT4AllEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "/models/not-loaded-by-these-tests.gguf"}


class TestOllamaEmbeddingsStandard(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[OllamaEmbeddings]:
        return OllamaEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "all-minilm"}


class TestLlamafileEmbeddingsStandard(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[LlamafileEmbeddings]:
        return LlamafileEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"base_url": "http://127.0.0.1:8080"}


# --- the shared base: batching, normalisation, checks ------------------------------------


class RecordingEmbeddings(LocalEmbeddings):
    """Embeds text i as the vector (len(text), 1, 0): enough to check order and batching."""

    batches: list[list[str]] = []
    reply: Any = None

    def _default_batch_size(self) -> int:
        return 3

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        self.batches.append(list(texts))
        if self.reply is not None:
            return self.reply  # type: ignore[no-any-return]
        return [[float(len(t)), 1.0, 0.0] for t in texts]


def test_documents_are_sent_in_default_batches_in_order() -> None:
    emb = RecordingEmbeddings(normalize=False, batches=[])
    texts = [f"t{'x' * i}" for i in range(7)]
    vectors = emb.embed_documents(texts)
    assert [len(b) for b in emb.batches] == [3, 3, 1]
    assert [v[0] for v in vectors] == [float(len(t)) for t in texts]


def test_batch_size_overrides_default_and_must_be_positive() -> None:
    emb = RecordingEmbeddings(normalize=False, batches=[], batch_size=5)
    emb.embed_documents(["a"] * 11)
    assert [len(b) for b in emb.batches] == [5, 5, 1]
    with pytest.raises(InvalidParameterError, match="batch_size"):
        RecordingEmbeddings(batch_size=0)


def test_vectors_are_l2_normalised_by_default() -> None:
    vector = RecordingEmbeddings(batches=[]).embed_query("abc")
    assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-9)
    assert vector[0] / vector[1] == pytest.approx(3.0)
    assert l2_normalize([0.0, 0.0]) == [0.0, 0.0]


def test_empty_list_makes_no_call() -> None:
    emb = RecordingEmbeddings(batches=[])
    assert emb.embed_documents([]) == []
    assert emb.batches == []


@pytest.mark.parametrize(
    ("texts", "match"),
    [("one string", "got one string"), (["ok", 3], "item 1 is int"), (42, "got int")],
)
def test_bad_document_input_is_a_typed_error(texts: Any, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match) as info:
        RecordingEmbeddings(batches=[]).embed_documents(texts)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, LocalLLMError)


def test_query_must_be_a_string() -> None:
    with pytest.raises(InvalidParameterError, match="expected a string"):
        RecordingEmbeddings(batches=[]).embed_query(["not", "a", "string"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        ([[1.0]], "expected 2 embeddings, got 1"),
        ([[1.0], []], "empty or non-numeric"),
        ([[1.0], [1.0, 2.0]], "lengths"),
    ],
)
def test_wrong_runtime_answers_are_malformed_response_errors(reply: Any, match: str) -> None:
    emb = RecordingEmbeddings(batches=[], reply=reply)
    with pytest.raises(MalformedResponseError, match=match):
        emb.embed_documents(["a", "b"])


async def test_async_path_batches_the_same_way() -> None:
    emb = RecordingEmbeddings(normalize=False, batches=[])
    vectors = await emb.aembed_documents(["a", "bb", "ccc", "dddd"])
    assert [len(b) for b in emb.batches] == [3, 1]
    assert [v[0] for v in vectors] == [1.0, 2.0, 3.0, 4.0]
    assert (await emb.aembed_query("xyz"))[0] == 3.0


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValueError, match="model_pth"):
        LlamaCppEmbeddings(model_pth="x.gguf")  # type: ignore[call-arg]


def test_in_process_classes_do_not_load_on_construction(tmp_path: Any) -> None:
    missing = tmp_path / "nope.gguf"
    emb = LlamaCppEmbeddings(model_path=str(missing))
    with pytest.raises(ModelNotFoundError):  # typed error on first use, naming the file
        emb.embed_query("hello")
    g = GPT4AllEmbeddings(model=str(missing))
    with pytest.raises(ModelNotFoundError):
        g.embed_query("hello")


def test_gpt4all_embeddings_check_their_options() -> None:
    with pytest.raises(InvalidParameterError, match="long_text_mode"):
        GPT4AllEmbeddings(model="x.gguf", long_text_mode="split")
    with pytest.raises(InvalidParameterError, match="dimensionality"):
        GPT4AllEmbeddings(model="x.gguf", dimensionality=0)


# --- Ollama's protocol, driven step by step -------------------------------------------------


def _run(exchange: Any, answers: list[Any]) -> tuple[list[Call], Any]:
    """Drive a protocol generator: each answer is sent (or thrown if an exception)."""
    calls = [next(exchange)]
    try:
        for answer in answers:
            if isinstance(answer, BaseException):
                calls.append(exchange.throw(answer))
            else:
                calls.append(exchange.send(answer))
    except StopIteration as done:
        return calls, done.value
    raise AssertionError(f"protocol wanted more answers after {calls}")


def test_ollama_sends_one_api_embed_request_per_batch() -> None:
    emb = OllamaEmbeddings(model="all-minilm", keep_alive="5m", options={"num_ctx": 512})
    calls, vectors = _run(emb._exchange(["a", "b"]), [{"embeddings": [[1, 2], [3, 4]]}])
    assert calls == [
        Call(
            "/api/embed",
            {
                "model": "all-minilm",
                "options": {"num_ctx": 512},
                "keep_alive": "5m",
                "input": ["a", "b"],
                "truncate": True,
            },
        )
    ]
    assert vectors == [[1.0, 2.0], [3.0, 4.0]]


def test_ollama_falls_back_to_legacy_endpoint_on_old_servers_and_remembers() -> None:
    emb = OllamaEmbeddings(model="all-minilm")
    old_server_404 = ServerResponseError("404 page not found", status_code=404)
    calls, vectors = _run(
        emb._exchange(["a", "b"]), [old_server_404, {"embedding": [1.0, 0.0]}, {"embedding": [0.0, 1.0]}]
    )
    assert [c.path for c in calls] == ["/api/embed", "/api/embeddings", "/api/embeddings"]
    assert [c.body["prompt"] for c in calls[1:]] == ["a", "b"]
    assert vectors == [[1.0, 0.0], [0.0, 1.0]]
    assert emb.legacy is True
    calls, _ = _run(emb._exchange(["c"]), [{"embedding": [1.0]}])
    assert [c.path for c in calls] == ["/api/embeddings"]


def test_ollama_unknown_model_is_not_mistaken_for_an_old_server() -> None:
    emb = OllamaEmbeddings(model="nope")
    exchange = emb._exchange(["a"])
    next(exchange)
    with pytest.raises(ModelNotFoundError):
        exchange.throw(ModelNotFoundError("model 'nope' not found", status_code=404))
    assert emb.legacy is None


def test_ollama_legacy_empty_embedding_means_model_cannot_embed() -> None:
    emb = OllamaEmbeddings(model="llama2", legacy=True)
    exchange = emb._exchange(["a"])
    next(exchange)
    with pytest.raises(UnsupportedParameterError, match="does not support embeddings"):
        exchange.send({"embedding": []})


def test_ollama_answer_without_embeddings_is_malformed() -> None:
    exchange = OllamaEmbeddings(model="m")._exchange(["a"])
    next(exchange)
    with pytest.raises(MalformedResponseError, match="'embeddings'"):
        exchange.send({"model": "m"})


def test_ollama_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:11500")
    assert OllamaEmbeddings(model="m").base_url == "http://127.0.0.1:11500"
    with pytest.raises(InvalidParameterError, match="base_url"):
        OllamaEmbeddings(model="m", base_url="localhost:11434")


# --- llama-server's answer shapes over the years ----------------------------------------------

URL = "http://127.0.0.1:8080/embedding"


def test_llamafile_parses_todays_list_of_pooled_rows_in_index_order() -> None:
    answer = [{"index": 1, "embedding": [[0.0, 1.0]]}, {"index": 0, "embedding": [[1.0, 0.0]]}]
    assert _parse_batch(answer, 2, URL) == [[1.0, 0.0], [0.0, 1.0]]


def test_llamafile_parses_2024_results_and_openai_data() -> None:
    assert _parse_batch({"results": [{"embedding": [1, 2]}, {"embedding": [3, 4]}]}, 2, URL) == [
        [1.0, 2.0],
        [3.0, 4.0],
    ]
    assert _parse_batch({"data": [{"index": 0, "embedding": [5, 6]}]}, 1, URL) == [[5.0, 6.0]]


def test_llamafile_parses_the_original_single_answer() -> None:
    assert _parse_batch({"embedding": [0.5, 0.5]}, 1, URL) == [[0.5, 0.5]]


def test_llamafile_per_token_vectors_say_how_to_enable_pooling() -> None:
    with pytest.raises(InvalidModelFileError, match="--pooling mean"):
        _parse_batch([{"index": 0, "embedding": [[1.0], [2.0], [3.0]]}], 1, URL)


@pytest.mark.parametrize("answer", [{"foo": 1}, [{"index": 0}], "text"])
def test_llamafile_unknown_shapes_are_malformed(answer: Any) -> None:
    with pytest.raises(MalformedResponseError):
        _parse_batch(answer, 1, URL)


def test_llamafile_old_single_text_server_gets_one_text_per_request() -> None:
    emb = LlamafileEmbeddings(base_url="http://127.0.0.1:8080")
    calls, vectors = _run(
        emb._exchange(["a", "b"]),
        [{"embedding": [9.0]}, {"embedding": [1.0, 0.0]}, {"embedding": [0.0, 1.0]}],
    )
    assert [c.body for c in calls] == [{"content": ["a", "b"]}, {"content": "a"}, {"content": "b"}]
    assert vectors == [[1.0, 0.0], [0.0, 1.0]]
    assert emb.single_text is True


def test_llamafile_server_without_embeddings_says_how_to_restart() -> None:
    exchange = LlamafileEmbeddings()._exchange(["a"])
    next(exchange)
    error = ServerResponseError(
        "not supported",
        status_code=501,
        server_message="This server does not support embeddings. Start it with `--embeddings`",
    )
    with pytest.raises(UnsupportedParameterError, match="Restart it with `--embeddings`"):
        exchange.throw(error)


def test_llamafile_api_key_is_sent_as_bearer() -> None:
    emb = LlamafileEmbeddings(api_key="s3cret", headers={"X-Trace": "1"})  # type: ignore[arg-type]
    assert emb.client.headers == {"X-Trace": "1", "Authorization": "Bearer s3cret"}
    assert "s3cret" not in repr(emb)


def test_ollama_dimensions_on_a_server_without_api_embed_warn_they_have_no_effect() -> None:
    emb = OllamaEmbeddings(model="all-minilm", dimensions=2)
    old_server_404 = ServerResponseError("404 page not found", status_code=404)
    with pytest.warns(UnsupportedParameterWarning, match="dimensions=2 has no effect"):
        calls, vectors = _run(emb._exchange(["a"]), [old_server_404, {"embedding": [1.0, 0.0, 0.0]}])
    assert calls[0].body["dimensions"] == 2
    assert vectors == [[1.0, 0.0, 0.0]]
