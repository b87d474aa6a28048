"""GPT4All models in process, through the gpt4all package."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from langchain_core.language_models import LangSmithParams
from langchain_core.outputs import GenerationChunk

from langchain_localllm._core.base.llm import LocalLLM
from langchain_localllm._core.base.peers import Ignored
from langchain_localllm.gpt4all.params import GPT4AllParams
from langchain_localllm.gpt4all.runtime import DEFAULT_MODEL_DIR, generate_locked, import_gpt4all

__all__ = ["DEFAULT_MODEL_DIR", "GPT4All", "import_gpt4all"]


class GPT4All(GPT4AllParams, LocalLLM):
    """GPT4All models running in this process, via the gpt4all package.

    A drop-in replacement for ``langchain_community.llms.GPT4All`` that really
    streams: tokens arrive as gpt4all produces them, stop sequences end
    generation at once (no partial stop string is ever emitted), ``max_tokens``
    is honoured, nothing is downloaded unless ``allow_download=True``, and
    instances of one model share one loaded copy behind a lock.

    Setup:
        ```bash
        pip install -U "langchain-localllm[gpt4all]"
        ```
        and a GGUF model file (e.g. from the GPT4All app's model folder).

    Key init args — model loading:
        model: str
            Path of the GGUF file, or its file name inside ``model_path``.
        model_path: str | None
            Folder holding the model (default: ``~/.cache/gpt4all``).
        n_ctx: int
            Context window (2048).
        device: str
            "cpu" (default), "gpu", "kompute", "cuda" or a GPU name.
        allow_download: bool
            Download a missing model from gpt4all.io (False: never).

    Key init args — generation:
        max_tokens, temp, top_k, top_p, min_p, repeat_penalty, repeat_last_n, n_batch, stop

    Instantiate:
        ```python
        from langchain_localllm import GPT4All

        llm = GPT4All(model="/models/orca-mini-3b-gguf2-q4_0.gguf", max_tokens=128)
        ```

    Invoke:
        ```python
        llm.invoke("The first man on the moon was")
        ```

    Stream:
        ```python
        for token in llm.stream("The first man on the moon was"):
            print(token, end="", flush=True)
        ```

    Async:
        ```python
        await llm.ainvoke("The first man on the moon was")
        async for token in llm.astream("The first man on the moon was"):
            print(token, end="", flush=True)
        ```

    gpt4all has no seed: passing one warns (``UnsupportedParameterWarning``);
    use ``temp=0`` for reproducible output.
    """

    _peer_ignored: ClassVar[Mapping[str, Ignored]] = {
        **GPT4AllParams._peer_ignored,
        "client": Ignored(None, "the model is loaded from model and shared through the model cache"),
        "backend": Ignored(None, "gpt4all detects the architecture from the file"),
        "n_parts": Ignored(-1, "gpt4all has no model parts"),
        "f16_kv": Ignored(False, "gpt4all chooses its KV cache type itself"),
        "logits_all": Ignored(False, "gpt4all does not return logits"),
        "vocab_only": Ignored(False, "gpt4all always loads the weights"),
        "use_mlock": Ignored(False, "gpt4all has no mlock setting"),
        "embedding": Ignored(False, "use GPT4AllEmbeddings for embeddings"),
        "echo": Ignored(False, "the answer never repeats the prompt"),
    }

    # --- generation --------------------------------------------------------------------

    def _iter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> Iterator[GenerationChunk]:
        args = self._call_args(kwargs)
        loaded = self.load()
        with loaded.lock:
            yield from generate_locked(loaded.model, prompt, args, stop, self.model_name)

    # --- LangChain metadata --------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "gpt4all"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "gpt4all"
        params.update(self._ls_sampling(self._stop_sequences(stop), kwargs))  # type: ignore[typeddict-item]
        return params
