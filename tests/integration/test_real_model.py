"""Meaning, on a real model: Gemma 3 270M (base, Q4_K_M; the ``[demo]`` extra).

Every other test checks mechanics; these check that the answers make sense, through
``LlamaCpp``, ``Llamafile`` (a real llama-server serving the file), ``Ollama`` (the
emulator serving it) and the chains. Each assertion was chosen by measuring what this
model does with greedy decoding on this build (the measured values are in the
docstrings); each docstring also says what the generated random-weight model
(``tests.fixtures.models.tiny_model``) gives for the same assertion: it fails, so these
tests catch a chain that loses the question, a prompt the model cannot read, or a
retriever that returns the wrong passage. Answers are kept short (CI budget).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from langchain_localllm import LlamaCpp, LlamaCppEmbeddings, Llamafile, Ollama
from langchain_localllm.chains import rag_chain, search_queries_chain, summarize_chain
from langchain_localllm.demo_models.gemma import gemma_gguf_path
from langchain_localllm.demo_models.minilm import minilm_gguf_path
from langchain_localllm.prompts import is_base_model, prompt_format
from langchain_localllm.rag import index_folder
from tests.fixtures.runs import LLMEvents
from tests.support.llama_server import LlamaServer
from tests.support.ollama_server import OllamaTestServer

pytestmark = [pytest.mark.real_model, pytest.mark.usefixtures("fresh_prompt_format_cache")]

FRANCE = "Question: What is the capital of France?\nAnswer:"
TURN_MARKERS = ("<start_of_turn>", "<end_of_turn>", "[INST]", "<|im_start|>")


@pytest.fixture(scope="module")
def gemma() -> Path:
    return gemma_gguf_path()


@pytest.fixture(scope="module")
def llm(gemma: Path) -> LlamaCpp:
    return LlamaCpp(model_path=str(gemma), temperature=0, max_tokens=48, n_ctx=2048, verbose=False)


# --- simple facts, through every backend that can run Gemma 3 ------------------------


def answer_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def test_llamacpp_completes_a_simple_fact(llm: LlamaCpp) -> None:
    """Measured: ``' Paris'``. The random-weight model: ``'usedlsqrsho'``."""
    assert llm.invoke(FRANCE, max_tokens=4, stop=["\n"]).strip() == "Paris"
    assert prompt_format(llm) == "plain"
    assert is_base_model(llm)  # its file has no chat template, though its name says "gemma"


def test_llamacpp_stream_kept_half_read_resumes_intact_after_another_call(llm: LlamaCpp) -> None:
    """Gemma 3 keeps a sliding-window KV cache beside the full one: the kept stream's whole
    state is saved when the next call takes the model, and put back when it is read again.
    Measured: the resumed text equals the uninterrupted one (``' Paris\\nQuestion: ...'``)."""
    colours = "The three primary colours are"
    expected = {FRANCE: llm.invoke(FRANCE, max_tokens=24), colours: llm.invoke(colours, max_tokens=24)}
    kept = llm.stream(FRANCE, max_tokens=24)
    head = [next(kept), next(kept)]
    assert llm.invoke(colours, max_tokens=24) == expected[colours]  # same thread: it used to hang
    assert "".join(head) + "".join(kept) == expected[FRANCE]
    assert expected[FRANCE].strip().startswith("Paris")


_LOG_SCRIPT = """
import os, sys
from langchain_localllm import ChatLlamaCpp, LlamaCpp
path = sys.argv[1]
quiet = LlamaCpp(model_path=path, n_ctx=1024, max_tokens=2, verbose=False)
chat = ChatLlamaCpp(model_path=path, chat_format="gemma", n_ctx=1024, max_tokens=2)  # the same model
loud = LlamaCpp(model_path=path, n_ctx=512, max_tokens=2, verbose=True)
def block(name, *calls):
    os.write(2, f"<{name}>\\n".encode())
    for call in calls:
        call()
    os.write(2, f"</{name}>\\n".encode())
block("quiet", lambda: quiet.invoke("Hello"), lambda: chat.invoke("Hi"))
from langchain_localllm._inprocess.model_cache import MODEL_CACHE
block("loud", lambda: loud.invoke("Hello"), lambda: MODEL_CACHE.evict(loud.load().key))  # freed here
block("quiet", lambda: quiet.invoke("Hello again"), lambda: chat.invoke("Hi again"))
"""


def test_llamacpp_prints_llama_cpps_log_exactly_for_the_verbose_model(gemma: Path) -> None:
    """Loading Gemma 3 makes llama.cpp warn ``llama_kv_cache_iswa: using full-size SWA cache``;
    llama-cpp-python's log callback numbers ggml's levels as an older ggml did and printed that
    warning at ``verbose=False`` on every load. Here (the process's file descriptor 2, so
    native and Python writes alike): nothing for the quiet model, loaded first, also after a
    verbose model of the same file loaded later in the same process; everything for the
    verbose one (debug, info and warning lines, and what freeing it logs)."""
    run = subprocess.run(
        [sys.executable, "-c", _LOG_SCRIPT, str(gemma)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    blocks = re.findall(r"<(\w+)>\n(.*?)</\1>\n", run.stderr, flags=re.S)
    assert [name for name, _ in blocks] == ["quiet", "loud", "quiet"], run.stderr[:2000]
    assert re.sub(r"<(\w+)>\n.*?</\1>\n", "", run.stderr, flags=re.S) == ""  # nothing outside them
    assert blocks[0][1] == "" and blocks[2][1] == ""
    loud = blocks[1][1]
    for line in ("llama_kv_cache_iswa: using full-size SWA cache", "init_tokenizer:", "print_info:"):
        assert line in loud  # a warning, a debug and an info line
    assert "llama_perf_context_print:" in loud and "~llama_context:" in loud


def test_llamafile_on_llama_server_completes_a_simple_fact(gemma: Path, llama_server_binary: Path) -> None:
    """Measured: ``' Paris'``; llama-server reports its built-in ChatML template for this model,
    which must not count as the model's (the vocabulary has no ``<|im_start|>`` token). The
    random-weight model: noise, as through LlamaCpp."""
    with LlamaServer(gemma, binary=llama_server_binary, n_ctx=1024, threads=2) as server:
        remote = Llamafile(base_url=server.base_url, n_predict=4, temperature=0)
        assert answer_line(remote.invoke(FRANCE, stop=["\n"])) == "Paris"
        assert is_base_model(remote)
        assert prompt_format(remote) == "plain"


def test_ollama_on_the_emulator_completes_a_simple_fact(gemma: Path) -> None:
    """Measured: ``' Paris'``; ``/api/show`` gives the pass-through template ``{{ .Prompt }}``.
    The random-weight model: noise, as through LlamaCpp."""
    with OllamaTestServer({"gemma3:270m": gemma}, n_ctx=1024, n_threads=2) as server:
        remote = Ollama(model="gemma3:270m", base_url=server.base_url, num_predict=4, temperature=0)
        assert answer_line(remote.invoke(FRANCE, stop=["\n"])) == "Paris"
        assert is_base_model(remote)


# --- chains ---------------------------------------------------------------------------

QUESTIONS = {
    "What NFL team won the Super Bowl in the year Justin Bieber was born?": {
        "nfl",
        "super",
        "bowl",
        "bieber",
    },
    "How do solar panels turn sunlight into electricity?": {
        "solar",
        "panel",
        "panels",
        "sunlight",
        "electricity",
    },
}


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_search_queries_are_distinct_and_keep_the_key_terms(llm: LlamaCpp, question: str) -> None:
    """Measured (repeat penalty 1.1): ``['Which NFL team won the Super Bowl in 2016 with Justin
    Bieber?', 'Who was the first person to play for a Super Bowl champion?']`` and ``['What type
    of solar panel is used to produce electricity?', 'How many solar panels are on the roof of a
    house?', 'Which company produces the most solar energy in 2016?']``. With the chat-format
    prompt chosen from the file name (the old behaviour) the answer was "You are a student at
    the University of California, Berkeley?". The random-weight model: one query of noise
    (``'zhhaguyg bh koam houthis ...?'``) without a key term.
    """
    recorder = LLMEvents()
    queries = search_queries_chain(llm, n=3).invoke(question, config={"callbacks": [recorder]})
    assert 2 <= len(queries) <= 3
    assert len({q.lower() for q in queries}) == len(queries)
    for query in queries:
        words = {w.strip("?,.!'\"").lower() for w in query.split()}
        assert words & QUESTIONS[question], query
    assert not any(marker in recorder.prompts[0] for marker in TURN_MARKERS)


PASSAGES = {
    "bee": "Honey bees live in colonies of up to sixty thousand workers, a queen and a few hundred drones. "
    "The workers gather nectar and pollen from flowers, and turn the nectar into honey, which the colony "
    "eats through the winter. By carrying pollen from flower to flower, bees pollinate many crops.",
    "vesuvius": "Mount Vesuvius is a volcano near Naples, in Italy. In the year 79 it erupted and buried the "
    "Roman towns of Pompeii and Herculaneum under ash. The ash preserved houses, paintings and even "
    "loaves of bread, so archaeologists can see how Romans lived.",
}


@pytest.mark.parametrize("subject", list(PASSAGES))
def test_summary_names_the_main_subject_in_fewer_words(llm: LlamaCpp, subject: str) -> None:
    """Measured: ``' The bees are the most important pollinators in the world, and they are the
    only ones who can make honey.'`` and ``' The eruption of Mount Vesuvius is a reminder that the
    Romans were not immune to earthquakes and volcanoes, ...'`` (fluent, not always right; one
    line, about half the text or less). With the name-guessed Gemma chat prompt it returned its
    own prompt. The random-weight model: ``' byshould aga hu)yxgj kfnr^piclastiq...'``."""
    summary = summarize_chain(llm).invoke(PASSAGES[subject])
    assert subject in summary.lower()
    assert len(summary) < 0.7 * len(PASSAGES[subject])
    assert summary.strip() not in PASSAGES[subject]  # its own words, not a copied sentence


DOCUMENTS = {
    "garden.md": "# Garden\n\nThe tomatoes in the back garden need water every morning in July. "
    "The roses were pruned in March.",
    "launch.md": "# Team plans\n\nProject Kestrel, our new weather satellite, launches on 12 October 2027 "
    "from the coast of Norway.",
    "recipes.txt": "To make pancakes, whisk flour, eggs and milk, then fry thin layers of batter in butter.",
    "cars.txt": "The blue car needs new tyres before the winter. The garage opens at eight.",
    "books.txt": "The library book about volcanoes is due back on Friday.",
}


def test_rag_finds_the_one_document_with_an_invented_fact(llm: LlamaCpp, tmp_path: Path) -> None:
    """The fact (a code name and a date) exists nowhere but in ``launch.md``: neither model can
    know it. Measured: MiniLM ranks ``launch.md`` first and Gemma answers ``' On 12 October
    2027.'``. The random-weight model retrieves the same (the embeddings are real) but answers
    ``' water sz cam mx symoreoldwillku ...'``."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCUMENTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    embeddings = LlamaCppEmbeddings(model_path=str(minilm_gguf_path()))
    retriever = index_folder(
        folder, embeddings, persist_directory=tmp_path / "index", k=2, show_progress=False
    )
    recorder = LLMEvents()
    result = rag_chain(llm, retriever).invoke(
        "When does Project Kestrel launch?", config={"callbacks": [recorder]}
    )
    assert Path(result["sources"][0]).name == "launch.md"
    assert "12 October 2027" in result["answer"]
    assert not any(marker in recorder.prompts[0] for marker in TURN_MARKERS)


CITIES = [
    ("Maria flew to Lisbon, in Portugal, to visit her grandmother.", "lisbon", "portugal"),
    ("The conference this year is held in Toronto, Canada.", "toronto", "canada"),
    ("We spent a week in Kyoto, Japan, looking at temples.", "kyoto", "japan"),
    ("Our office in Nairobi, Kenya, opens next month.", "nairobi", "kenya"),
    ("They got married in Krakow, Poland, last spring.", "krakow", "poland"),
    ("The museum in Cairo, Egypt, holds ancient treasures.", "cairo", "egypt"),
    ("Paris is the capital of France.", "paris", "france"),
    ("I took the train to Rome last week.", "rome", "italy"),
    ("The marathon starts in Boston on Monday.", "boston", "united states"),
    ("Tokyo hosted the Olympic Games in 2021.", "tokyo", "japan"),
]
CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}
EXTRACTION_PROMPT = (
    "Sentences, each followed by the city it mentions and that city's country, as JSON.\n\n"
    "Sentence: Last summer Anna walked along the canals of Amsterdam.\n"
    'JSON: {{"city": "Amsterdam", "country": "Netherlands"}}\n\n'
    "Sentence: The film festival in Mumbai, India, starts tomorrow.\n"
    'JSON: {{"city": "Mumbai", "country": "India"}}\n\n'
    "Sentence: {sentence}\nJSON:"
)
ALIASES = {"usa": "united states", "us": "united states", "united states of america": "united states"}
PINNED_ACCURACY = 8 / 10


def _norm(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().strip().lower()
    return ALIASES.get(plain, plain)


def test_grammar_constrained_extraction_of_city_and_country(llm: LlamaCpp) -> None:
    """Measured: 9 of 10 right (``Kraków`` and ``USA`` count as right; Nairobi comes back as
    ``{"city": "Kenya", "country": "Africa"}``); pinned at 8 of 10. The grammar guarantees the
    shape, the model supplies the meaning. The random-weight model writes a string that does not
    close within the token budget: the first answer does not even parse."""
    extractor = llm.bind(json_schema=CITY_SCHEMA, max_tokens=32)
    right = 0
    for sentence, city, country in CITIES:
        answer = json.loads(extractor.invoke(EXTRACTION_PROMPT.format(sentence=sentence)))
        right += (_norm(answer["city"]), _norm(answer["country"])) == (city, country)
    assert right / len(CITIES) >= PINNED_ACCURACY, f"{right} of {len(CITIES)}"


# --- runtimes that cannot run it, and the CLI ---------------------------------------


def test_gpt4all_names_the_architecture_it_cannot_run(gemma: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from langchain_localllm import GPT4All
    from langchain_localllm.errors import InvalidModelFileError, UnsupportedArchitectureError

    with pytest.raises(UnsupportedArchitectureError) as info:
        GPT4All(model=str(gemma), max_tokens=4).invoke("Hello")
    error = info.value
    assert isinstance(error, InvalidModelFileError)
    assert error.details["architecture"] == "gemma3"
    message = str(error)
    assert "'gemma3'" in message
    assert "gpt4all 2.8 predates it" in message
    assert "LlamaCpp" in message
    captured = capfd.readouterr()
    assert "LLaMA ERROR" not in captured.out + captured.err
