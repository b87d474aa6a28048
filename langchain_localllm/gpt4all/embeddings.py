"""Embeddings from a local GGUF embedding model run in process by gpt4all, never online."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from langchain_localllm._core.base.derived import derived
from langchain_localllm._core.base.embeddings import LocalEmbeddings
from langchain_localllm._core.base.peers import Ignored, PeerKwargs
from langchain_localllm._inprocess.model_cache import LoadedModel
from langchain_localllm.errors import InvalidModelFileError, InvalidParameterError
from langchain_localllm.gpt4all.runtime import load_gpt4all, resolve_model_file, token_ids

__all__ = ["GPT4AllEmbeddings"]

#: Texts per gpt4all call. gpt4all's list input is no faster per text than one text per
#: call on a CPU (benchmarks/embeddings_throughput.py), and one at a time keeps the
#: model's lock free between texts for LLM calls sharing it.
DEFAULT_BATCH_SIZE = 1


class GPT4AllEmbeddings(LocalEmbeddings):
    """Sentence embeddings from a local GGUF file with gpt4all, in process, offline.

    Unlike ``gpt4all.Embed4All`` (and the community wrapper built on it), this never
    contacts gpt4all.io: the model is opened from the given file with
    ``allow_download=False`` and embedded through gpt4all's native ``llmodel_embed``.
    The loaded model is shared with ``GPT4All`` instances of the same file and load
    settings (one process-wide model cache); every call holds the model's lock.

    Setup:
        ```bash
        pip install 'langchain-localllm[gpt4all]'
        ```

        gpt4all embeds with models of the ``bert`` and ``nomic-bert`` architectures whose
        ``general.name`` it knows (all-MiniLM-L6-v2, nomic-embed-text-v1/v1.5).
        ``langchain_localllm.demo_models.minilm.minilm_gguf_path()`` makes
        all-MiniLM-L6-v2 offline from the ``[minilm]`` extra.

    Key init args:
        model: str
            Path of the GGUF embedding model (or a file name inside ``model_path``).
        device: str | None
            "cpu" (default) or a GPU name.
        prefix: str | None
            Task prefix for nomic-embed models ("search_document", "search_query"...).
        batch_size: int | None
            Texts per gpt4all call; None: the measured fastest (1).

    Instantiate:
        ```python
        from langchain_localllm import GPT4AllEmbeddings

        embeddings = GPT4AllEmbeddings(model="/models/all-MiniLM-L6-v2-f16.gguf")
        ```

    Embed:
        ```python
        vector = embeddings.embed_query("What is the capital of France?")
        vectors = embeddings.embed_documents(["Paris is the capital of France."])
        ```

    Async:
        ```python
        vector = await embeddings.aembed_query("What is the capital of France?")
        ```
    """

    model: str
    """Path of the GGUF embedding model file, or its file name inside ``model_path``."""

    model_path: str | None = None
    """Folder that holds ``model`` when ``model`` is a bare file name."""

    device: str | None = "cpu"
    """Processing unit: "cpu", "gpu", "kompute", "cuda", ... (as for ``GPT4All``)."""

    n_ctx: int = 2048
    """Context window in tokens (gpt4all's load parameter; texts longer than the model's
    own context are split and averaged, see ``long_text_mode``)."""

    n_threads: int | None = None
    """CPU threads; None lets gpt4all choose."""

    prefix: str | None = None
    """Task prefix (nomic-embed models); None: gpt4all's default for the model."""

    dimensionality: int | None = None
    """Output size for Matryoshka models (nomic-embed-text-v1.5); None: full size."""

    long_text_mode: str = "mean"
    """Texts longer than the model's context: "mean" (average the parts) or "truncate"."""

    verbose: bool = False
    """Print gpt4all's own log."""

    gpt4all_kwargs: dict[str, Any] | None = None
    """langchain-community's arguments for ``gpt4all.Embed4All``: ``n_threads``, ``device``
    and ``n_ctx`` are used (when not given as arguments); others have no effect (this class
    never downloads)."""

    _peer_renamed: ClassVar[Mapping[str, str]] = {"model_name": "model"}
    _peer_ignored: ClassVar[Mapping[str, Ignored]] = {
        "client": Ignored(None, "the model is loaded from model and shared through the model cache"),
    }
    _peer_kwargs: ClassVar[Mapping[str, PeerKwargs]] = {
        "gpt4all_kwargs": PeerKwargs(
            ("n_threads", "device", "n_ctx"),
            "only n_threads, device and n_ctx are used; models are never downloaded",
        ),
    }

    def model_post_init(self, context: Any, /) -> None:
        if self.long_text_mode not in ("mean", "truncate"):
            raise InvalidParameterError(
                f"long_text_mode must be 'mean' or 'truncate', got {self.long_text_mode!r}.",
                parameter="long_text_mode",
            )
        if self.dimensionality is not None and self.dimensionality < 1:
            raise InvalidParameterError(
                f"dimensionality must be a positive integer or None, got {self.dimensionality}.",
                parameter="dimensionality",
            )

    # --- model ------------------------------------------------------------------------

    @derived("model", "model_path")
    def model_file(self) -> Path:
        """The resolved model file path."""
        return resolve_model_file(self.model, self.model_path)

    def load(self) -> LoadedModel:
        """Load the model now (it otherwise loads on first use); shared with ``GPT4All``
        instances of the same file and load settings."""
        return load_gpt4all(
            self.model_file,
            n_ctx=self.n_ctx,
            device=self.device,
            n_threads=self.n_threads,
            verbose=self.verbose,
        )

    def get_num_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's vocabulary read from its GGUF file (no special
        tokens added), so that chunk lengths add up."""
        return len(token_ids(self.model_file, text))

    @property
    def client(self) -> Any:
        """The shared ``gpt4all.GPT4All`` (hold ``self.load().lock`` while calling it)."""
        return self.load().model

    # --- embedding --------------------------------------------------------------------

    def _default_batch_size(self) -> int:
        return DEFAULT_BATCH_SIZE

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        loaded = self.load()
        dimensionality = -1 if self.dimensionality is None else self.dimensionality
        # gpt4all rejects empty strings; an empty text embeds like a lone space.
        inputs = [text if text else " " for text in texts]
        with loaded.lock:
            try:
                result = loaded.model.model.generate_embeddings(
                    inputs, self.prefix, dimensionality, self.long_text_mode == "mean", False, None
                )
            except (RuntimeError, ValueError) as error:
                message = str(error)
                if "not an embedding model" in message or "unsupported model" in message.lower():
                    raise InvalidModelFileError(
                        f"gpt4all cannot embed with {self.model_file}: {message}. gpt4all embeds "
                        "with bert/nomic-bert GGUF models it knows by general.name "
                        "(all-MiniLM-L6-v2, nomic-embed-text); use LlamaCppEmbeddings for others.",
                        path=str(self.model_file),
                    ) from error
                raise InvalidParameterError(
                    f"gpt4all could not embed the batch: {message}", parameter="texts"
                ) from error
        return list(result["embeddings"])
