"""Write small but real GGUF models: llama architecture, random weights.

The models have a SentencePiece vocabulary with byte fallback and a chat template
in their metadata, so llama.cpp, llama-server and gpt4all load and run them
exactly like a downloaded model. Only the weights are random: the text is
gibberish, the inference path is real.

>>> from langchain_localllm.demo_models import write_tiny_model
>>> path = write_tiny_model("/tmp/tiny.gguf", chat_format="chatml")  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import os
import string
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from langchain_localllm.prompts import get_chat_format

_WORDS = """
the of and to in a is that for it as was with be by on not he i this are or his from at
which but have an they you were her she there one all we their been has when who will
more no if out so said what up its about into than them can only other new some could
time these two may then do first any my now such like our over man me even most made
after also did many before must through back years where much your way well down should
because each just those people how too little state good very make world still own see
men work long get here between both life being under never day same another know while
last might us great old year off come since against go came right used take three moon
sun star sky night light dark water fire earth wind tree stone river sea ship city road
house door king queen word name book story song music art game team player season city
question answer search query summary chunk document model token local private fast
""".split()  # noqa: SIM905

_CONTROL = {
    "chatml": ["<|im_start|>", "<|im_end|>"],
    "llama3": ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    "phi3": ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
    "gemma": ["<start_of_turn>", "<end_of_turn>"],
}

#: Sizes by name: (n_embd, n_layer, n_head, n_ff, extra synthetic vocabulary).
PRESETS: dict[str, tuple[int, int, int, int, int]] = {
    "tiny": (64, 2, 4, 128, 0),  # ~0.3 MB, for tests
    "small": (256, 4, 8, 768, 2000),  # ~6M parameters
    "bench": (512, 8, 8, 1536, 8000),  # ~25M parameters, for benchmarks
}


@dataclass(frozen=True)
class TinyModelSpec:
    """What :func:`write_tiny_model` writes."""

    size: str = "tiny"
    """A key of :data:`PRESETS`."""
    chat_format: str | None = "llama2"
    """A registered chat format whose template goes into ``tokenizer.chat_template``, or None for none."""
    context_length: int = 2048
    """``llama.context_length``: what ``n_ctx=0`` resolves to."""
    rope_freq_base: float = 10000.0
    """``llama.rope.freq_base``: the model's own rope setting."""
    seed: int = 0
    """Seed for the random weights: the same seed writes the same file."""
    name: str = "tiny-random-llama"
    """``general.name``."""
    dtype: str = "f32"
    """``f32`` or ``f16`` for the weight matrices (norms stay f32)."""
    extra_metadata: dict[str, str] = field(default_factory=dict)
    """More string key/values to write."""


def _vocabulary(chat_format: str | None, extra: int) -> tuple[list[str], list[float], list[int]]:
    # SentencePiece conventions: <unk>, <s>, </s>, then 256 byte tokens, then pieces
    # with "\u2581" marking a leading space. Longer pieces score higher so the
    # tokenizer prefers whole words.
    tokens = ["<unk>", "<s>", "</s>"]
    types = [2, 3, 3]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256
    for piece in _CONTROL.get(chat_format or "", []):
        tokens.append(piece)
        types.append(3)
    pieces: list[str] = []
    pieces += ["\u2581", *(string.ascii_letters + string.digits + string.punctuation)]
    pieces += ["\u2581" + c for c in string.ascii_letters + string.digits]
    pieces += ["\u2581" + w for w in dict.fromkeys(_WORDS)]
    pieces += [w for w in dict.fromkeys(_WORDS) if len(w) > 2]
    pieces += ["\u2581caf\u00e9", "\u00e9", "\u65e5\u672c", "\u2581\u00fcber"]  # some non-ASCII text
    for a, b in itertools.islice(itertools.product(string.ascii_lowercase, repeat=2), extra):
        pieces.append(a + b)
        pieces.append("\u2581" + a + b)
    # SentencePiece merges pairs of pieces, so every prefix of a piece must be a piece too
    # (as in real vocabularies); without them words would never merge past two characters.
    pieces = [piece[:n] for piece in pieces for n in range(1, len(piece) + 1)]
    pieces = list(dict.fromkeys(p for p in pieces if p not in tokens))
    tokens += pieces
    types += [1] * len(pieces)
    scores = [0.0] * (len(tokens) - len(pieces)) + [float(len(p)) for p in pieces]
    return tokens, scores, types


def write_tiny_model(path: str | os.PathLike[str], **spec_fields: object) -> Path:
    """Write a llama-architecture GGUF with random weights and return its path.

    Keyword arguments are the fields of :class:`TinyModelSpec`. The file is
    rewritten only when missing, so callers can cache it.
    """
    import gguf  # heavy-ish and only needed here

    spec = TinyModelSpec(**spec_fields)  # type: ignore[arg-type]
    path = Path(path)
    if path.is_file() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    n_embd, n_layer, n_head, n_ff, extra = PRESETS[spec.size]
    tokens, scores, types = _vocabulary(spec.chat_format, extra)
    n_vocab = len(tokens)
    rng = np.random.default_rng(spec.seed)
    wtype = np.float16 if spec.dtype == "f16" else np.float32

    def weight(*shape: int, scale: float | None = None) -> np.ndarray:
        std = scale if scale is not None else 1.0 / np.sqrt(shape[-1])
        return (rng.standard_normal(shape) * std).astype(wtype)

    tmp = path.with_name(path.name + ".part")
    writer = gguf.GGUFWriter(str(tmp), arch="llama")
    writer.add_name(spec.name)
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_rope_freq_base(spec.rope_freq_base)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(1 if spec.dtype == "f16" else 0)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if spec.chat_format:
        writer.add_chat_template(get_chat_format(spec.chat_format).template)
    for key, value in spec.extra_metadata.items():
        writer.add_string(key, value)

    writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd, scale=1.0))
    for i in range(n_layer):
        blk = f"blk.{i}"
        writer.add_tensor(f"{blk}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{blk}.{name}.weight", weight(n_embd, n_embd))
        writer.add_tensor(f"{blk}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"{blk}.ffn_gate.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"{blk}.ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"{blk}.ffn_down.weight", weight(n_embd, n_ff))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    # Logits with a wide spread make sampling behave like a trained model's; the
    # rows of special, control and non-printable byte tokens are zero so that the
    # model practically never ends early or emits broken UTF-8.
    output = weight(n_vocab, n_embd, scale=5.0 / np.sqrt(n_embd) * 3)
    for token_id, (tok, ttype) in enumerate(zip(tokens, types, strict=True)):
        printable_byte = ttype == 6 and 0x20 <= int(tok[3:5], 16) <= 0x7E
        if ttype in (2, 3) or (ttype == 6 and not printable_byte):
            output[token_id] = 0
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return path
