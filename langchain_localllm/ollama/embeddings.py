"""Embeddings from a local Ollama server: ``/api/embed`` with a list, ``/api/embeddings`` for old servers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from langchain_localllm._core.base.peers import Ignored, warn_no_effect
from langchain_localllm._core.http.errors import OLLAMA, ServerKind
from langchain_localllm._core.server.embeddings import Call, Exchange, ServerEmbeddings, vector_of
from langchain_localllm.errors import MalformedResponseError, ServerResponseError, UnsupportedParameterError
from langchain_localllm.ollama.client import OllamaConnection

__all__ = ["OllamaEmbeddings"]


class OllamaEmbeddings(OllamaConnection, ServerEmbeddings):
    """Embeddings from a local Ollama server, one request per batch of texts.

    Uses ``POST /api/embed`` with a list ``input`` (Ollama 0.3.4 and later); against an
    older server, which answers that endpoint with a bare 404, it falls back to the
    legacy ``POST /api/embeddings`` (one text per request) and remembers that. Only
    ``base_url`` is contacted.

    Setup:
        ```bash
        ollama pull all-minilm  # or nomic-embed-text, mxbai-embed-large, ...
        pip install langchain-localllm
        ```

    Key init args:
        model: str
            Name of the Ollama model.
        base_url: str
            Root URL of the server (default ``$OLLAMA_HOST`` or http://localhost:11434).
        truncate: bool
            Let the server cut texts longer than the model's context (default True).
        keep_alive: str | int | None
            How long Ollama keeps the model loaded after the request.

    Instantiate:
        ```python
        from langchain_localllm import OllamaEmbeddings

        embeddings = OllamaEmbeddings(model="all-minilm")
        ```

    Embed:
        ```python
        vector = embeddings.embed_query("What is the capital of France?")
        vectors = embeddings.embed_documents(["Paris is the capital of France.", "Bonjour"])
        ```

    Async:
        ```python
        vector = await embeddings.aembed_query("What is the capital of France?")
        vectors = await embeddings.aembed_documents(["Paris is the capital of France."])
        ```
    """

    _server_kind: ClassVar[ServerKind] = OLLAMA

    model: str
    """Name of the Ollama model, e.g. ``"all-minilm"`` or ``"nomic-embed-text"``."""

    truncate: bool = True
    """Let the server cut texts longer than the context; False makes it answer an error."""

    keep_alive: str | int | None = None
    """How long the model stays loaded after a request (e.g. ``"5m"``, ``0``); None: server default."""

    options: dict[str, Any] = Field(default_factory=dict)
    """Model options (``num_ctx``, ``num_thread``...) sent with each request."""

    legacy: bool | None = None
    """Use the legacy ``/api/embeddings`` endpoint. None: ``/api/embed``, falling back
    automatically when the server does not have it."""

    dimensions: int | None = Field(default=None, ge=1)
    """Output size for models that can shorten their vectors (Matryoshka); None: full size."""

    num_ctx: int | None = None
    """Context window (tokens) to run the model with (an Ollama option). None: the server's default."""

    num_gpu: int | None = None
    """Layers to offload to the GPU (an Ollama option)."""

    num_thread: int | None = None
    """CPU threads (an Ollama option); None lets Ollama decide."""

    model_kwargs: dict[str, Any] | None = None
    """More Ollama options, merged over ``options`` (langchain-community's name)."""

    embed_instruction: str = ""
    """Prefix added to each document before embedding (e.g. ``"passage: "`` for E5 models)."""

    query_instruction: str = ""
    """Prefix added to a query before embedding (e.g. ``"query: "`` for E5 models)."""

    _peer_ignored: ClassVar[Mapping[str, Ignored]] = {
        name: Ignored(None, "embedding does not sample")
        for name in (
            "mirostat",
            "mirostat_eta",
            "mirostat_tau",
            "repeat_last_n",
            "repeat_penalty",
            "temperature",
            "stop",
            "tfs_z",
            "top_k",
            "top_p",
        )
    } | {"show_progress": Ignored(False, "no progress bar is shown")}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed a list of texts (each prefixed with ``embed_instruction``), one vector each, in order."""
        return super().embed_documents(self._prefixed(texts, self.embed_instruction))

    def embed_query(self, text: str) -> list[float]:
        """Embed one query (prefixed with ``query_instruction``)."""
        return super().embed_documents(self._prefixed([text], self.query_instruction))[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents`."""
        return await super().aembed_documents(self._prefixed(texts, self.embed_instruction))

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query`."""
        return (await super().aembed_documents(self._prefixed([text], self.query_instruction)))[0]

    @staticmethod
    def _prefixed(texts: Any, prefix: str) -> Any:
        if not prefix or isinstance(texts, str):
            return texts  # the base class explains what is wrong with a bare string
        return [prefix + text if isinstance(text, str) else text for text in texts]

    def _options(self) -> dict[str, Any]:
        options = {k: v for k, v in (("num_ctx", self.num_ctx), ("num_gpu", self.num_gpu)) if v is not None}
        if self.num_thread is not None:
            options["num_thread"] = self.num_thread
        return {**options, **self.options, **(self.model_kwargs or {})}

    def _model_for_errors(self) -> str | None:
        return self.model

    def _exchange(self, texts: list[str]) -> Exchange:
        common: dict[str, Any] = {"model": self.model}
        options = self._options()
        if options:
            common["options"] = options
        if self.keep_alive is not None:
            common["keep_alive"] = self.keep_alive
        if not self.legacy:
            try:
                body = {**common, "input": texts, "truncate": self.truncate}
                if self.dimensions is not None:
                    body["dimensions"] = self.dimensions
                answer = yield Call("/api/embed", body)
            except ServerResponseError as error:
                # Servers before 0.3.4 have no /api/embed: a 404 that is not "model not found".
                if self.legacy is False or getattr(error, "status_code", None) != 404:
                    raise
                self.legacy = True
                if self.dimensions is not None:
                    reason = "this Ollama is older than /api/embed, whose vectors can be shortened"
                    warn_no_effect(type(self).__name__, "dimensions", self.dimensions, reason, stacklevel=6)
            else:
                url = self.client.url("/api/embed")
                vectors = answer.get("embeddings") if isinstance(answer, dict) else None
                if not isinstance(vectors, list):
                    raise MalformedResponseError(
                        f"Ollama at {url} answered without an 'embeddings' list: {str(answer)[:120]}", url=url
                    )
                return [vector_of(v, url) for v in vectors]
        url = self.client.url("/api/embeddings")
        out: list[list[float]] = []
        for text in texts:
            answer = yield Call("/api/embeddings", {**common, "prompt": text})
            value = answer.get("embedding") if isinstance(answer, dict) else None
            if value == []:  # what old servers answer for a model that cannot embed
                raise UnsupportedParameterError(
                    f"Ollama at {url} returned an empty embedding for {self.model!r}: the model does "
                    "not support embeddings. Use an embedding model (all-minilm, nomic-embed-text).",
                    model=self.model,
                    url=url,
                )
            out.append(vector_of(value, url))
        return out
