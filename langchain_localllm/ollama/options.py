"""The model options every Ollama class sends (``options`` in ``/api/generate`` and
``/api/chat``), as fields named the way Ollama names them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from langchain_localllm._core.server.llm import drop_none

#: Model options (``options`` in the request), named as Ollama names them.
OPTION_FIELDS = (
    "num_ctx",
    "num_predict",
    "num_keep",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "repeat_last_n",
    "presence_penalty",
    "frequency_penalty",
    "penalize_newline",
    "seed",
    "tfs_z",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "num_batch",
    "use_mmap",
    "use_mlock",
    "low_vram",
)


class OllamaOptions(BaseModel):
    """Model-option fields; a call's option keywords and ``options=`` are merged over them."""

    num_ctx: int | None = None
    """Context window (tokens) to run the model with. None: the server's default."""

    num_predict: int | None = None
    """Most tokens to generate; -1 no limit, -2 fill the context. None: server default."""

    num_keep: int | None = None
    """Prompt tokens kept when the context fills up."""

    temperature: float | None = None
    """Sampling temperature; 0 is greedy. None: the model's default."""

    top_k: int | None = None
    """Sample from the k most likely tokens."""

    top_p: float | None = None
    """Nucleus sampling probability mass."""

    min_p: float | None = None
    """Minimum probability relative to the most likely token."""

    typical_p: float | None = None
    """Locally typical sampling (1.0 disables)."""

    repeat_penalty: float | None = None
    """Penalty for repeated tokens (1.0 disables)."""

    repeat_last_n: int | None = None
    """How far back the repeat penalty looks (0 disables, -1 the context)."""

    presence_penalty: float | None = None
    """Presence penalty."""

    frequency_penalty: float | None = None
    """Frequency penalty."""

    penalize_newline: bool | None = None
    """Whether the repeat penalty applies to newlines."""

    tfs_z: float | None = None
    """Tail-free sampling (recent Ollama versions ignore it)."""

    seed: int | None = None
    """Random seed; the same seed and settings give the same text."""

    mirostat: int | None = None
    """Mirostat sampling: 0 off, 1 Mirostat, 2 Mirostat 2.0."""

    mirostat_tau: float | None = None
    """Mirostat target entropy."""

    mirostat_eta: float | None = None
    """Mirostat learning rate."""

    num_gpu: int | None = None
    """Layers to offload to the GPU (0: CPU only)."""

    main_gpu: int | None = None
    """Which GPU holds the small tensors."""

    num_thread: int | None = None
    """CPU threads; None lets Ollama decide."""

    num_batch: int | None = None
    """Prompt-processing batch size."""

    use_mmap: bool | None = None
    """Memory-map the model file."""

    use_mlock: bool | None = None
    """Lock the model in RAM."""

    low_vram: bool | None = None
    """Trade speed for GPU memory."""

    options: dict[str, Any] | None = None
    """More model options sent as given; per-call ``options=`` are merged over these."""

    def _instance_options(self) -> dict[str, Any]:
        options = drop_none({name: getattr(self, name) for name in OPTION_FIELDS})
        options.update(self.options or {})
        return options

    def _merged_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Instance options, then the call's option keywords, then the call's ``options=``."""
        options = self._instance_options()
        options.update(drop_none({k: v for k, v in kwargs.items() if k in OPTION_FIELDS}))
        options.update(kwargs.get("options") or {})
        return options
