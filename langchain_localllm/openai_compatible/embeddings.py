"""``OpenAICompatibleEmbeddings``: embeddings from any OpenAI-compatible server's ``/v1/embeddings``."""

from __future__ import annotations

from typing import Any

from langchain_localllm._core.server.embeddings import Call, Exchange, ServerEmbeddings, vector_of
from langchain_localllm.errors import LocalLLMError, MalformedResponseError, UnsupportedParameterError
from langchain_localllm.openai_compatible.server import OpenAICompatibleServer


class OpenAICompatibleEmbeddings(OpenAICompatibleServer, ServerEmbeddings):
    """Embeddings computed by vLLM, llama-server, LM Studio, ... through ``/v1/embeddings``.

    Setup:
        ```bash
        vllm serve BAAI/bge-small-en-v1.5 --port 8000        # vLLM picks the embedding task
        # or: llama-server -m embedder.gguf --embeddings --pooling mean --port 8000
        ```

    Key init args:
        base_url: str | list[str]
            Root URL (``/v1`` optional), or a list of servers: batches are spread over them.
        model: str | None
            Served model name; default the server's first.
        batch_size: int | None
            Texts per request (64 by default).
        normalize: bool
            L2-normalise the vectors.

    Instantiate:
        ```python
        from langchain_localllm import OpenAICompatibleEmbeddings

        embeddings = OpenAICompatibleEmbeddings(base_url="http://localhost:8000/v1")
        ```

    Embed:
        ```python
        vectors = embeddings.embed_documents(["local models", "private data"])
        query = embeddings.embed_query("What runs offline?")
        ```

    Async:
        ```python
        vectors = await embeddings.aembed_documents(["local models"])
        ```
    """

    def _model_for_errors(self) -> str | None:
        return self.model

    def _exchange(self, texts: list[str]) -> Exchange:
        info = self.server_info()
        url = self.client.url("/v1/embeddings")
        try:
            answer = yield Call("/v1/embeddings", {"model": self._model_for(info), "input": texts})
        except LocalLLMError as error:
            if getattr(error, "status_code", None) == 501 or "--embedding" in str(error):
                msg = (
                    f"The server at {url} does not compute embeddings: {error}. Start it as an embedding "
                    "server (llama-server: `--embeddings --pooling mean`; vLLM serves embedding models)."
                )
                raise UnsupportedParameterError(msg, url=url) from error
            raise self._translated_error(error) from error
        return _vectors(answer, len(texts), url)


def _vectors(answer: Any, expected: int, url: str) -> list[list[float]]:
    items = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(items, list) or len(items) != expected:
        got = len(items) if isinstance(items, list) else str(answer)[:120]
        msg = f"The server at {url} sent {got} embeddings for {expected} texts."
        raise MalformedResponseError(msg, url=url)
    ordered = sorted(items, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
    return [vector_of(item.get("embedding") if isinstance(item, dict) else None, url) for item in ordered]
