"""The settings the llama.cpp classes share (``LlamaCpp``, ``ChatLlamaCpp``): loading,
sampling and grammar fields, named as llama-cpp-python names them, the peer arguments
they accept without effect, and what they derive from them (load arguments, each call's
:class:`~langchain_localllm.llamacpp.runtime.CompletionSettings`, compiled grammars)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import get_config_list
from pydantic import Field, PrivateAttr

from langchain_localllm._core.base.derived import DerivedState, derived
from langchain_localllm._core.base.peers import Ignored
from langchain_localllm._core.decoding.json_grammar import json_schema_to_gbnf
from langchain_localllm._core.gguf.reader import read_gguf
from langchain_localllm._inprocess.model_cache import LoadedModel
from langchain_localllm.errors import InvalidParameterError
from langchain_localllm.llamacpp.batching import DEFAULT_N_PARALLEL
from langchain_localllm.llamacpp.runtime import (
    CompletionSettings,
    Grammar,
    LlamaModelUser,
    Piece,
    import_llama_cpp,
    resolve_n_ctx,
)
from langchain_localllm.llamacpp.sharing import batched, complete

#: Sampling arguments forwarded to ``Llama.create_completion`` (field name = argument name).
_SAMPLING = ("temperature", "max_tokens", "top_p", "top_k", "min_p", "repeat_penalty", "seed")
#: The fields the load parameters are computed from.
_LOAD_FIELDS = (
    "model_path",
    "n_ctx",
    "n_batch",
    "n_gpu_layers",
    "n_threads",
    "use_mmap",
    "use_mlock",
    "rope_freq_base",
    "rope_freq_scale",
    "lora_path",
    "lora_base",
    "logits_all",
    "vocab_only",
    "last_n_tokens_size",
    "verbose",
    "model_kwargs",
)


#: Arguments of langchain-community's ``LlamaCpp`` and ``ChatLlamaCpp`` without effect here.
PEER_IGNORED: Mapping[str, Ignored] = {
    "client": Ignored(None, "the model is loaded from model_path and shared through the model cache"),
    "n_parts": Ignored(-1, "llama.cpp no longer splits models into parts"),
    "f16_kv": Ignored(True, "llama.cpp always uses an f16 KV cache (cache types: model_kwargs)"),
    "logprobs": Ignored(None, "token log-probabilities are not returned (Llamafile(n_probs=...) has them)"),
    "echo": Ignored(False, "the answer never repeats the prompt"),
}


class LlamaCppParams(LlamaModelUser, DerivedState):
    """Loading and sampling fields of the llama.cpp classes."""

    model_path: str
    """Path of the GGUF model file."""

    n_ctx: int | None = None
    """Context window in tokens. None: the model's own, at most 8192; 0: the model's own."""

    n_batch: int = 512
    """Prompt tokens processed per step (the old wrapper defaulted to a slow 8)."""

    n_gpu_layers: int | None = None
    """Layers to offload to the GPU (GPU builds of llama-cpp-python only)."""

    n_threads: int | None = None
    """CPU threads for generation; None lets llama.cpp choose."""

    use_mmap: bool = True
    """Map the model file into memory instead of reading it."""

    use_mlock: bool = False
    """Lock the model in RAM so it is never swapped out."""

    rope_freq_base: float | None = None
    """RoPE base frequency; None keeps the model file's value."""

    rope_freq_scale: float | None = None
    """RoPE frequency scale; None keeps the model file's value."""

    lora_path: str | None = None
    """Path of a LoRA adapter to apply."""

    lora_base: str | None = None
    """Base model for the LoRA adapter, if it needs one."""

    logits_all: bool = False
    """Keep the logits of every prompt token (llama-cpp-python's ``logits_all``; uses more memory)."""

    vocab_only: bool = False
    """Load only the vocabulary (tokenizing works, generating does not)."""

    last_n_tokens_size: int = 64
    """How many recent tokens llama-cpp-python keeps for the repeat penalty."""

    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """More keyword arguments for ``llama_cpp.Llama`` (load time)."""

    temperature: float = 0.8
    """Sampling temperature; 0 is greedy."""

    max_tokens: int | None = 256
    """Most tokens to generate; None or -1: until the context is full."""

    top_p: float = 0.95
    """Nucleus sampling: keep the smallest set of tokens with this total probability."""

    top_k: int = 40
    """Sample from the k most likely tokens (0: all)."""

    min_p: float = 0.05
    """Drop tokens less likely than this fraction of the most likely one."""

    repeat_penalty: float = 1.1
    """Penalty for repeating recent tokens (1.0: none)."""

    seed: int | None = None
    """Seed for sampling; a fixed seed makes sampling reproducible."""

    grammar: str | None = None
    """A GBNF grammar that the output must follow."""

    grammar_path: str | None = None
    """A file holding a GBNF grammar (instead of ``grammar``)."""

    json_schema: dict[str, Any] | str | None = None
    """A JSON schema that the output must follow (converted to a grammar)."""

    streaming: bool = True
    """Kept for compatibility: this class always streams internally."""

    verbose: bool = False
    """Print llama.cpp's own log (model loading, timings); False keeps it silent."""

    n_parallel: int = Field(default=DEFAULT_N_PARALLEL, ge=1)
    """Most calls decoded together, sharing each forward pass, when several want the model at
    once (``batch``/``abatch``, concurrent ``ainvoke``/``astream``, threads): they go through
    one batched engine per loaded model, made at the first concurrent call (its own KV
    cache: ``n_ctx`` cells per sequence, ``n_parallel * n_ctx`` in all, on top of the model's
    ``n_ctx``). A call alone on the model never uses it. 1: calls take turns, one at a time.
    The default, 4, was measured on Gemma 3 270M, 2 CPU cores: 82-94 tokens/s for 4 sequences
    against 66 for one (``llamacpp/sharing.py`` has the rule, ``benchmarks/batched_decoding.py``
    the numbers).
    The chains' map steps run this many calls at once by default."""

    _grammar_cache: dict[str, Any] = PrivateAttr(default_factory=dict)
    _sampling_fields: ClassVar[tuple[str, ...]] = _SAMPLING
    """The fields forwarded to ``create_completion`` as sampling arguments."""

    _peer_ignored: ClassVar[Mapping[str, Ignored]] = PEER_IGNORED
    """Arguments of langchain-community's classes without effect here (see :data:`PEER_IGNORED`)."""

    # --- model ------------------------------------------------------------------------

    @derived(*_LOAD_FIELDS)
    def _load_kwargs(self) -> dict[str, Any]:
        return {
            "n_ctx": resolve_n_ctx(self.model_path, self.n_ctx),
            "n_batch": self.n_batch,
            "n_gpu_layers": self.n_gpu_layers,
            "n_threads": self.n_threads,
            "use_mmap": self.use_mmap,
            "use_mlock": self.use_mlock,
            "rope_freq_base": self.rope_freq_base,
            "rope_freq_scale": self.rope_freq_scale,
            "lora_path": self.lora_path,
            "lora_base": self.lora_base,
            "logits_all": self.logits_all or None,
            "vocab_only": self.vocab_only or None,
            "last_n_tokens_size": self.last_n_tokens_size,
            "verbose": self.verbose,
            **self.model_kwargs,
        }

    def get_context_window(self) -> int:
        """The loaded context window (llama.cpp may round ``n_ctx`` up); loads the model."""
        return int(self.client.n_ctx())

    def chat_template(self) -> str | None:
        from langchain_localllm.prompts.template_source import sourced

        return sourced(read_gguf(self.model_path).chat_template, f"GGUF file {self.model_path}")

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` by the model's own tokenizer (no BOS)."""
        loaded = self.load()
        with loaded.lock:
            return list(loaded.model.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def get_num_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer."""
        return len(self.get_token_ids(text))

    # --- generation --------------------------------------------------------------------

    def batch(
        self, inputs: list[Any], config: RunnableConfig | list[RunnableConfig] | None = None, **kwargs: Any
    ) -> list[Any]:
        """One ``invoke`` per input at once (``Runnable.batch``: callbacks and errors per input,
        ``return_exceptions`` per input); the calls share the model's forward passes."""
        with batched(len(inputs)):
            return Runnable.batch(self, inputs, self._sized(config, len(inputs)), **kwargs)  # type: ignore[arg-type]

    async def abatch(
        self, inputs: list[Any], config: RunnableConfig | list[RunnableConfig] | None = None, **kwargs: Any
    ) -> list[Any]:
        """One ``ainvoke`` per input at once (``Runnable.abatch``), sharing the forward passes."""
        with batched(len(inputs)):
            return await Runnable.abatch(self, inputs, self._sized(config, len(inputs)), **kwargs)  # type: ignore[arg-type]

    def _sized(
        self, config: RunnableConfig | list[RunnableConfig] | None, inputs: int
    ) -> list[RunnableConfig]:
        """The configs, with ``max_concurrency`` (unless given) twice the engine's slots: a
        finished sequence's slot is taken at the next step. (``Runnable.batch`` would run at
        most the thread pool's default, ``cpu_count + 4`` calls, at once: 6 on 2 cores.)"""
        configs = get_config_list(config, inputs)
        if configs and configs[0].get("max_concurrency") is None:
            workers = self._batch_workers(inputs)
            configs = [{**c, "max_concurrency": workers} for c in configs]
        return configs

    def _batch_workers(self, inputs: int) -> int:
        """Calls of one batch run at once: twice the engine's slots (a finished sequence's
        slot is taken at the next step), at most the inputs."""
        return max(min(inputs, 2 * self.n_parallel), 1)

    def _complete(
        self, tokens: list[int], settings: CompletionSettings, loaded: LoadedModel | None = None
    ) -> Iterator[Piece]:
        """One completion on the loaded model, alone or shared (:func:`~.sharing.complete`)."""
        return complete(loaded or self.load(), tokens, settings, self.n_parallel)

    def _grammar(self, grammar: str | None, json_schema: Any) -> Grammar | None:
        if self.grammar_path and not grammar and json_schema is None:
            grammar = Path(self.grammar_path).read_text()
        if json_schema is not None:
            source = json_schema if isinstance(json_schema, str) else json.dumps(json_schema)
            key = "schema:" + source
        elif grammar:
            source, key = grammar, "gbnf:" + grammar
        else:
            return None
        if key not in self._grammar_cache:
            llama_grammar = import_llama_cpp().llama_grammar
            try:
                if key.startswith("schema:"):  # ours enforces number bounds, llama-cpp-python's does not
                    source = json_schema_to_gbnf(json.loads(source))
                compiled = llama_grammar.LlamaGrammar.from_string(source, verbose=False)
            except (ValueError, RuntimeError, KeyError, TypeError, json.JSONDecodeError) as error:
                what = "json_schema" if key.startswith("schema:") else "grammar"
                raise InvalidParameterError(
                    f"{type(self).__name__}: invalid {what}: {error}. Check it against llama.cpp's GBNF "
                    "guide (grammars/README.md) or pass a valid JSON schema.",
                    parameter=what,
                ) from error
            self._grammar_cache[key] = (source, compiled)
        return self._grammar_cache[key]

    def _call_args(
        self, stop: list[str], kwargs: dict[str, Any], extra: tuple[str, ...] = ()
    ) -> CompletionSettings:
        """The completion settings of a call; ``extra`` names more per-call arguments the
        caller handles itself."""
        sampling = self._sampling_fields
        unknown = set(kwargs) - {*sampling, "grammar", "json_schema", *extra}
        if unknown:
            raise InvalidParameterError(
                f"{type(self).__name__}: unknown call argument(s) {sorted(unknown)}; per call you can pass "
                f"stop and {', '.join((*sampling, 'grammar', 'json_schema', *extra))}.",
                parameter=sorted(unknown)[0],
            )
        args = {name: kwargs.get(name, getattr(self, name)) for name in sampling}
        max_tokens = args.pop("max_tokens")
        suffix = args.pop("suffix", None)
        return CompletionSettings(
            sampling=args,
            max_tokens=-1 if max_tokens is None else max_tokens,
            stop=tuple(stop),
            grammar=self._grammar(
                kwargs.get("grammar", self.grammar), kwargs.get("json_schema", self.json_schema)
            ),
            suffix=suffix,
        )

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_path": self.model_path,
            **{k: v for k, v in self._load_kwargs.items() if k != "verbose"},
            **{name: getattr(self, name) for name in self._sampling_fields},
            "stop": getattr(self, "stop", None),
            "grammar": self.grammar,
            "json_schema": self.json_schema,
        }

    def _ls_sampling(self, stops: list[str], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The LangSmith parameters of a call: model name, temperature, max tokens, stops."""
        params: dict[str, Any] = {
            "ls_model_name": kwargs.get("model") or self.model_name,
            "ls_temperature": kwargs.get("temperature", self.temperature),
        }
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None and max_tokens > 0:
            params["ls_max_tokens"] = max_tokens
        if stops:
            params["ls_stop"] = stops
        return params
