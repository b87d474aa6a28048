"""LlamaCppEmbeddings and GPT4AllEmbeddings on the real all-MiniLM-L6-v2, converted offline."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_localllm import GPT4All, GPT4AllEmbeddings, LlamaCppEmbeddings
from langchain_localllm._inprocess.model_cache import MODEL_CACHE
from langchain_localllm.demo_models.minilm import (
    MINILM_NAME,
    minilm_gguf_path,
    reference_embed,
    reference_tokenize,
)
from langchain_localllm.errors import InvalidModelFileError, InvalidParameterError
from tests.fixtures.models import tiny_model

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "Où se trouve la gare? Ünïcödé, café and naïve façades!",
    "In 1969, Apollo 11 landed on the Moon; Neil Armstrong walked first.",
    "tokenization of unbelievably uncommon wordpieces: antidisestablishmentarianism",
]

PARAPHRASES = [
    ("How do I reset my password?", "What are the steps to change my login password?"),
    ("The cat is sleeping on the sofa.", "A cat naps on the couch."),
    ("The stock market fell sharply today.", "Share prices dropped steeply on the exchange today."),
    ("He is learning to play the guitar.", "He is taking guitar lessons."),
]


def cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- the converted model itself -----------------------------------------------------------


def test_converted_gguf_is_a_mean_pooled_bert_with_the_real_vocabulary(minilm_path: Path) -> None:
    from langchain_localllm._core.gguf.reader import read_gguf

    info = read_gguf(minilm_path)
    assert info.architecture == "bert"
    assert info.name == MINILM_NAME
    assert info.metadata["bert.pooling_type"] == 1  # mean
    assert info.metadata["tokenizer.ggml.model"] == "bert"
    assert info.metadata["tokenizer.ggml.token_type_count"] == 2
    assert 40e6 < minilm_path.stat().st_size < 50e6  # F16 matrices


def test_conversion_is_cached_and_repeatable(minilm_path: Path, tmp_path: Path) -> None:
    assert minilm_gguf_path() == minilm_path
    mtime = minilm_path.stat().st_mtime_ns
    assert minilm_gguf_path().stat().st_mtime_ns == mtime  # not converted again
    fresh = minilm_gguf_path(tmp_path / "copy.gguf")
    assert fresh.read_bytes() == minilm_path.read_bytes()  # deterministic


def test_llama_cpp_tokenizes_like_the_bert_tokenizer(llamacpp_embeddings: LlamaCppEmbeddings) -> None:
    llm = llamacpp_embeddings.client
    for sentence in SENTENCES:
        assert llm.tokenize(sentence.encode()) == reference_tokenize(sentence), sentence


@pytest.mark.parametrize("which", ["llamacpp", "gpt4all"])
def test_embeddings_match_a_numpy_forward_pass(which: str, request: pytest.FixtureRequest) -> None:
    embeddings = request.getfixturevalue(f"{which}_embeddings")
    vectors = embeddings.embed_documents(SENTENCES)
    for sentence, vector in zip(SENTENCES, vectors, strict=True):
        assert len(vector) == 384
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)  # normalised
        assert cosine(vector, reference_embed(sentence)) >= 0.99, sentence


def test_both_runtimes_agree(
    llamacpp_embeddings: LlamaCppEmbeddings, gpt4all_embeddings: GPT4AllEmbeddings
) -> None:
    for a, b in zip(
        llamacpp_embeddings.embed_documents(SENTENCES),
        gpt4all_embeddings.embed_documents(SENTENCES),
        strict=True,
    ):
        assert cosine(a, b) >= 0.999


@pytest.mark.parametrize("which", ["llamacpp", "gpt4all"])
def test_paraphrases_score_higher_than_unrelated_pairs(which: str, request: pytest.FixtureRequest) -> None:
    embeddings = request.getfixturevalue(f"{which}_embeddings")
    left = embeddings.embed_documents([a for a, _ in PARAPHRASES])
    right = embeddings.embed_documents([b for _, b in PARAPHRASES])
    for i in range(len(PARAPHRASES)):
        paired = cosine(left[i], right[i])
        unrelated = max(cosine(left[i], right[j]) for j in range(len(PARAPHRASES)) if j != i)
        assert paired > unrelated + 0.2, PARAPHRASES[i]


def test_batch_size_does_not_change_the_vectors(minilm_path: Path) -> None:
    texts = [
        f"Sentence number {i} talks about {topic}." for i, topic in enumerate(["cats", "dogs", "tax"] * 3)
    ]
    one = LlamaCppEmbeddings(model_path=str(minilm_path), batch_size=1).embed_documents(texts)
    many = LlamaCppEmbeddings(model_path=str(minilm_path), batch_size=32).embed_documents(texts)
    assert all(cosine(a, b) > 0.9999 for a, b in zip(one, many, strict=True))


def test_long_text_is_truncated_or_refused(minilm_path: Path) -> None:
    long_text = "word " * 2000
    vector = LlamaCppEmbeddings(model_path=str(minilm_path)).embed_query(long_text)
    assert len(vector) == 384
    strict = LlamaCppEmbeddings(model_path=str(minilm_path), truncate=False)
    with pytest.raises(InvalidParameterError, match="tokens, more than the 512"):
        strict.embed_documents(["short", long_text])


def test_unnormalised_vectors_on_request(minilm_path: Path) -> None:
    raw = LlamaCppEmbeddings(model_path=str(minilm_path), normalize=False).embed_query("hello world")
    assert np.linalg.norm(raw) > 1.5  # this model's raw mean-pooled vectors are long


# --- sharing, locking, async ------------------------------------------------------------------


def test_instances_share_one_loaded_model(minilm_path: Path, llamacpp_embeddings: LlamaCppEmbeddings) -> None:
    llamacpp_embeddings.embed_query("warm up")
    loads = MODEL_CACHE.loads
    other = LlamaCppEmbeddings(model_path=str(minilm_path))
    other.embed_query("no second load")
    assert MODEL_CACHE.loads == loads
    assert other.load() is llamacpp_embeddings.load()


def test_gpt4all_embeddings_share_the_llm_classes_model(
    minilm_path: Path, gpt4all_embeddings: GPT4AllEmbeddings
) -> None:
    assert GPT4All(model=str(minilm_path)).load() is gpt4all_embeddings.load()


def test_concurrent_threads_get_correct_vectors(llamacpp_embeddings: LlamaCppEmbeddings) -> None:
    expected = llamacpp_embeddings.embed_documents(SENTENCES)
    results: dict[int, list[list[float]]] = {}

    def work(i: int) -> None:
        results[i] = llamacpp_embeddings.embed_documents(SENTENCES[i:] + SENTENCES[:i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, got in results.items():
        rotated = expected[i:] + expected[:i]
        assert all(cosine(a, b) > 0.9999 for a, b in zip(got, rotated, strict=True))


async def test_async_does_not_block_the_loop(llamacpp_embeddings: LlamaCppEmbeddings) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    vectors = await llamacpp_embeddings.aembed_documents(SENTENCES * 4)
    task.cancel()
    assert len(vectors) == 20
    assert ticks > 1  # the loop kept running while the model worked


# --- wrong models -----------------------------------------------------------------------------


def test_llm_without_pooling_is_a_clear_error() -> None:
    with pytest.raises(InvalidModelFileError, match="no pooling type"):
        LlamaCppEmbeddings(model_path=str(tiny_model("llama2"))).embed_query("hi")


def test_gpt4all_refuses_a_non_embedding_model_clearly() -> None:
    with pytest.raises(InvalidModelFileError, match="gpt4all cannot embed"):
        GPT4AllEmbeddings(model=str(tiny_model("llama2"))).embed_query("hi")


# --- langchain-tests' standard integration suite --------------------------------------------


class TestLlamaCppEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[LlamaCppEmbeddings]:
        return LlamaCppEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model_path": str(minilm_gguf_path())}


class TestGPT4AllEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[GPT4AllEmbeddings]:
        return GPT4AllEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": str(minilm_gguf_path())}


# --- privacy ------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
@pytest.mark.parametrize("which", ["LlamaCppEmbeddings", "GPT4AllEmbeddings"])
def test_fresh_instances_embed_with_every_socket_blocked(which: str, minilm_path: Path) -> None:
    """Not even loopback: loading and embedding never open a socket (no download, no telemetry)."""
    import socket

    import pytest_socket

    pytest_socket.disable_socket(allow_unix_socket=True)
    try:
        with pytest.raises(pytest_socket.SocketBlockedError):
            socket.socket(socket.AF_INET)  # the guard is on
        if which == "LlamaCppEmbeddings":
            emb: Any = LlamaCppEmbeddings(model_path=str(minilm_path), n_threads=1)  # a new load
        else:
            emb = GPT4AllEmbeddings(model=str(minilm_path), n_threads=1)  # a new load
        assert len(emb.embed_query("offline please")) == 384
    finally:
        pytest_socket.enable_socket()
