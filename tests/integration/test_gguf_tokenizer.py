"""Token ids and texts read from a GGUF vocabulary equal llama.cpp's, and GPT4All needs no
llama.cpp for them (token counts, the EOS text of ChatGPT4All's templates)."""

from __future__ import annotations

import collections
import ctypes
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import gguf
import llama_cpp
import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_localllm import ChatGPT4All, GPT4All, GPT4AllEmbeddings
from langchain_localllm.gpt4all.tokenizer import gguf_tokenizer
from langchain_localllm.prompts.chat_template import render_chat_template
from tests.fixtures.models import tiny_model

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data" / "book_of_ruth_kjv.txt"
TEXTS = [
    "Hello world, this is a test.",
    " leading space and trailing ",
    "Two  spaces\nand a newline\n\n",
    "<s> special </s> tokens",
    "Numbers 1234567 and 3.14159!",
    "Ünïcödé café naïve 日本語 🙂",
    "",
    "tabs\tand\tmore",
    DATA.read_text()[:4000],
]


def gpt2_byte_chars() -> list[str]:
    """GPT-2's ``bytes_to_unicode``, as published with its encoder: the character of each byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1)]
    printable += range(ord("\xae"), ord("\xff") + 1)
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[byte] = chr(byte)
        else:
            chars[byte] = chr(256 + extra)
            extra += 1
    return [chars[byte] for byte in range(256)]


def write_bpe_model(path: Path, corpus: str, n_merges: int = 400) -> Path:
    """A byte-level BPE vocabulary (as Llama 3's, Qwen's) trained on ``corpus``: no weights,
    enough for llama.cpp's ``vocab_only``."""
    byte_chars = gpt2_byte_chars()
    counts = collections.Counter(
        "".join(byte_chars[b] for b in word.encode()) for word in re.findall(r" ?\w+| ?[^\w\s]+|\s+", corpus)
    )
    words = {word: list(word) for word in counts}
    tokens, merges = list(byte_chars), []
    for _ in range(n_merges):
        pairs: collections.Counter[tuple[str, str]] = collections.Counter()
        for word, parts in words.items():
            for pair in itertools.pairwise(parts):
                pairs[pair] += counts[word]
        (left, right), _ = max(pairs.items(), key=lambda item: (item[1], item[0]))
        merges.append(f"{left} {right}")
        tokens.append(left + right)
        for word, parts in words.items():
            merged, i = [], 0
            while i < len(parts):
                if parts[i : i + 2] == [left, right]:
                    merged.append(left + right)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            words[word] = merged
    tokens.append("<|endoftext|>")
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_context_length(256)
    writer.add_embedding_length(64)
    writer.add_block_count(1)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.NORMAL] * (len(tokens) - 1) + [gguf.TokenType.CONTROL])
    writer.add_token_merges(merges)
    writer.add_eos_token_id(len(tokens) - 1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def llama_piece(reference: llama_cpp.Llama, token: int) -> str:
    """llama.cpp's text of ``token`` (``special=True``), by its own API: llama-cpp-python's
    ``detokenize`` returns "" for pieces longer than its 32-byte buffer."""
    buffer = ctypes.create_string_buffer(1024)
    n = llama_cpp.llama_token_to_piece(reference._model.vocab, token, buffer, len(buffer), 0, True)
    assert 0 <= n <= len(buffer)
    return buffer.raw[:n].decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def bpe_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bpe_model(tmp_path_factory.mktemp("bpe") / "bpe.gguf", DATA.read_text())


def test_bpe_ids_equal_llama_cpps(bpe_model_path: Path) -> None:
    reference = llama_cpp.Llama(model_path=str(bpe_model_path), vocab_only=True, verbose=False)
    ours = gguf_tokenizer(bpe_model_path)
    assert len(ours.merges) == 400
    for text in [*TEXTS, "<|endoftext|> special", "the" * 3000, DATA.read_text()]:
        assert ours.encode(text) == reference.tokenize(text.encode(), add_bos=False, special=True), text[:40]


@pytest.mark.parametrize("model", ["llama2", "chatml", "bpe"])
def test_token_texts_and_eos_equal_llama_cpps(model: str, bpe_model_path: Path) -> None:
    path = bpe_model_path if model == "bpe" else tiny_model(model)
    reference = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    ours = gguf_tokenizer(path)
    for token in range(reference.n_vocab()):  # normal, byte, control and unknown tokens
        assert ours.decode([token]) == llama_piece(reference, token), token
    eos = llama_piece(reference, reference.token_eos())
    assert ours.special_text("eos") == eos == ("<|endoftext|>" if model == "bpe" else "</s>")


@pytest.mark.real_model
def test_gemma_eos_and_token_texts_equal_llama_cpps(gemma_path: Path) -> None:
    reference = llama_cpp.Llama(model_path=str(gemma_path), vocab_only=True, verbose=False)
    ours = gguf_tokenizer(gemma_path)
    assert ours.special_text("eos") == llama_piece(reference, reference.token_eos()) == "<eos>"
    for token in range(0, reference.n_vocab(), 97):
        assert ours.decode([token]) == llama_piece(reference, token), token


@pytest.mark.parametrize("spec", [{}, {"size": "small"}], ids=["tiny", "small"])
def test_spm_ids_equal_llama_cpps(spec: dict[str, str]) -> None:
    path = tiny_model("llama2", **spec)
    reference = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    ours = gguf_tokenizer(path)
    for text in TEXTS:
        assert ours.encode(text) == reference.tokenize(text.encode(), add_bos=False, special=True), text[:40]


def test_gpt4all_counts_tokens_without_llama_cpp(tiny_model_path: Path) -> None:
    # Regression: GPT4All.get_num_tokens loaded llama.cpp (MissingDependencyError with only
    # the [gpt4all] extra, so summarize_chain(GPT4All(...)) failed). Here llama_cpp cannot
    # be imported at all.
    text = DATA.read_text()[:2000]
    script = (
        "import sys, json; sys.modules['llama_cpp'] = None\n"
        "from langchain_localllm import GPT4All, GPT4AllEmbeddings\n"
        f"llm = GPT4All(model={str(tiny_model_path)!r})\n"
        f"text = {text!r}\n"
        "counts = [llm.get_num_tokens(text), GPT4AllEmbeddings(model=llm.model).get_num_tokens(text)]\n"
        "print(json.dumps([*counts, sys.modules['llama_cpp'] is not None]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    llm_count, embeddings_count, imported = json.loads(done.stdout)
    reference = llama_cpp.Llama(model_path=str(tiny_model_path), vocab_only=True, verbose=False)
    expected = len(reference.tokenize(text.encode(), add_bos=False, special=True))
    assert llm_count == embeddings_count == expected
    assert not imported
    assert GPT4All(model=str(tiny_model_path)).get_num_tokens(text) == expected
    assert GPT4AllEmbeddings(model=str(tiny_model_path)).get_num_tokens(text) == expected


def test_chat_gpt4all_closes_past_turns_with_the_eos_of_the_vocabulary_without_llama_cpp() -> None:
    # Regression: the EOS text came from llama.cpp (vocab_only), and was "" without it, so
    # Llama 2 templates laid out past assistant turns without their </s>.
    path = tiny_model("llama2")
    history = [HumanMessage("Hi"), AIMessage("Hello."), HumanMessage("Name a planet.")]
    script = (
        "import sys, json; sys.modules['llama_cpp'] = None\n"
        "from langchain_core.messages import AIMessage, HumanMessage\n"
        "from langchain_localllm import ChatGPT4All\n"
        f"chat = ChatGPT4All(model={str(path)!r})\n"
        "history = [HumanMessage('Hi'), AIMessage('Hello.'), HumanMessage('Name a planet.')]\n"
        "print(json.dumps([chat.get_num_tokens_from_messages(history), 'llama_cpp.llama' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    count, imported = json.loads(done.stdout)
    reference = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    eos = llama_piece(reference, reference.token_eos())
    chat = ChatGPT4All(model=str(path))
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    messages.append({"role": "user", "content": "Name a planet."})
    prompt = render_chat_template(chat.chat_template() or "", messages, bos_token="", eos_token=eos)
    assert "Hello. </s>" in prompt
    assert count == len(
        reference.tokenize(prompt.encode(), add_bos=True, special=True)
    )  # gpt4all adds BOS itself
    assert chat.get_num_tokens_from_messages(history) == count
    assert not imported
