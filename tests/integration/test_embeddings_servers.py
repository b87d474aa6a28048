"""OllamaEmbeddings and LlamafileEmbeddings against real traffic and real servers.

* the recorded ``/api/embeddings`` exchange of a real Ollama (tests/cassettes/ollama/);
* the project's Ollama test server serving the real all-MiniLM-L6-v2 GGUF;
* a real llama-server started with ``--embeddings`` on the same GGUF.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import vcr
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_localllm import LlamaCppEmbeddings, LlamafileEmbeddings, OllamaEmbeddings
from langchain_localllm.demo_models.minilm import minilm_gguf_path
from langchain_localllm.errors import (
    ModelNotFoundError,
    ServerUnreachableError,
    UnsupportedParameterError,
)
from tests.fixtures.models import tiny_model
from tests.support.llama_server import LlamaServer
from tests.support.ollama_server import OllamaTestServer

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes" / "ollama"
SENTENCES = ["The cat sat on the mat.", "Stock prices fell sharply.", "A kitten rested on the rug."]


def cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- recorded traffic of a real Ollama ---------------------------------------------------------


def replay(name: str) -> Any:
    return vcr.VCR(record_mode="none", match_on=["method", "path"]).use_cassette(str(CASSETTES / name))


def test_legacy_endpoint_against_recorded_ollama_traffic() -> None:
    emb = OllamaEmbeddings(model="llama3", base_url="http://127.0.0.1:11434", legacy=True, normalize=False)
    with replay("embeddings_legacy_llama3.yaml") as cassette:
        vector = emb.embed_query("all-minilm")
    assert cassette.play_count == 1
    assert len(vector) == 4096  # llama3's hidden size, as the real server sent it
    assert vector[:3] == pytest.approx([-0.07757184654474258, -1.6613305807113647, 0.5370924472808838])
    request = cassette.requests[0]
    assert request.path == "/api/embeddings"
    assert b'"prompt": "all-minilm"' in request.body or b'"prompt":"all-minilm"' in request.body


def test_recorded_legacy_vector_is_normalised_by_default() -> None:
    emb = OllamaEmbeddings(model="llama3", base_url="http://127.0.0.1:11434", legacy=True)
    with replay("embeddings_legacy_llama3.yaml"):
        vector = emb.embed_query("all-minilm")
    assert np.linalg.norm(vector) == pytest.approx(1.0)


async def test_legacy_endpoint_async_against_recorded_traffic() -> None:
    emb = OllamaEmbeddings(model="llama3", base_url="http://127.0.0.1:11434", legacy=True, normalize=False)
    with replay("embeddings_legacy_llama3.yaml") as cassette:
        vector = await emb.aembed_query("all-minilm")
    assert cassette.play_count == 1
    assert len(vector) == 4096


# --- the project's Ollama test server with the real MiniLM ----------------------------------


@pytest.fixture(scope="module")
def ollama_minilm(minilm_path: Path) -> Iterator[OllamaTestServer]:
    with OllamaTestServer({"all-minilm": minilm_path, "tiny": tiny_model("llama2")}, n_ctx=512) as server:
        yield server


def test_api_embed_batches_and_matches_in_process_vectors(
    ollama_minilm: OllamaTestServer, llamacpp_embeddings: LlamaCppEmbeddings
) -> None:
    emb = OllamaEmbeddings(model="all-minilm", base_url=ollama_minilm.base_url)
    vectors = emb.embed_documents(SENTENCES)
    local = llamacpp_embeddings.embed_documents(SENTENCES)
    assert all(cosine(a, b) > 0.999 for a, b in zip(vectors, local, strict=True))
    assert cosine(vectors[0], vectors[2]) > cosine(vectors[0], vectors[1])  # real semantics
    assert emb.legacy is None  # the modern endpoint was used


def test_legacy_endpoint_on_the_test_server_gives_the_same_vectors(ollama_minilm: OllamaTestServer) -> None:
    modern = OllamaEmbeddings(model="all-minilm", base_url=ollama_minilm.base_url).embed_documents(SENTENCES)
    legacy = OllamaEmbeddings(model="all-minilm", base_url=ollama_minilm.base_url, legacy=True)
    assert all(cosine(a, b) > 0.999 for a, b in zip(modern, legacy.embed_documents(SENTENCES), strict=True))


async def test_async_api_embed(ollama_minilm: OllamaTestServer) -> None:
    emb = OllamaEmbeddings(model="all-minilm", base_url=ollama_minilm.base_url, batch_size=2)
    vectors = await emb.aembed_documents(SENTENCES)
    assert len(vectors) == 3
    assert len(vectors[0]) == 384


def test_unknown_model_is_model_not_found(ollama_minilm: OllamaTestServer) -> None:
    emb = OllamaEmbeddings(model="no-such-model", base_url=ollama_minilm.base_url)
    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        emb.embed_query("hi")
    assert emb.legacy is None


def test_nothing_listening_is_server_unreachable() -> None:
    from tests.support.llama_server import free_port

    emb = OllamaEmbeddings(model="all-minilm", base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ServerUnreachableError):
        emb.embed_query("hi")


class TestOllamaEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _server(self, ollama_minilm: OllamaTestServer) -> None:
        type(self).base_url = ollama_minilm.base_url

    base_url = ""

    @property
    def embeddings_class(self) -> type[OllamaEmbeddings]:
        return OllamaEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "all-minilm", "base_url": self.base_url}


# --- a real llama-server with --embeddings ----------------------------------------------------


@pytest.fixture(scope="module")
def embedding_server(llama_server_binary: Path, minilm_path: Path) -> Iterator[LlamaServer]:
    server = LlamaServer(
        minilm_path,
        binary=llama_server_binary,
        n_ctx=512,
        threads=2,
        parallel=1,
        extra_args=["--embeddings", "--pooling", "mean", "-b", "512", "-ub", "512"],
    )
    with server:
        yield server


@pytest.mark.llama_server
def test_llama_server_embeddings_match_in_process(
    embedding_server: LlamaServer, llamacpp_embeddings: LlamaCppEmbeddings
) -> None:
    emb = LlamafileEmbeddings(base_url=embedding_server.base_url)
    vectors = emb.embed_documents(SENTENCES)
    local = llamacpp_embeddings.embed_documents(SENTENCES)
    assert all(cosine(a, b) > 0.999 for a, b in zip(vectors, local, strict=True))
    assert emb.single_text is False  # today's server takes the whole batch


@pytest.mark.llama_server
async def test_llama_server_async(embedding_server: LlamaServer) -> None:
    emb = LlamafileEmbeddings(base_url=embedding_server.base_url, batch_size=2)
    vectors = await emb.aembed_documents(SENTENCES)
    assert [len(v) for v in vectors] == [384, 384, 384]


@pytest.mark.llama_server
def test_llama_server_without_embeddings_says_how_to_enable_them(llama_server: LlamaServer) -> None:
    emb = LlamafileEmbeddings(base_url=llama_server.base_url)
    with pytest.raises(UnsupportedParameterError, match="--embeddings"):
        emb.embed_query("hi")


@pytest.mark.llama_server
class TestLlamafileEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _server(self, embedding_server: LlamaServer) -> None:
        type(self).base_url = embedding_server.base_url

    base_url = ""

    @property
    def embeddings_class(self) -> type[LlamafileEmbeddings]:
        return LlamafileEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"base_url": self.base_url}


def test_minilm_fixture_is_the_cached_file(minilm_path: Path) -> None:
    assert minilm_path == minilm_gguf_path()
