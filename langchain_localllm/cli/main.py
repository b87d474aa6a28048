"""``localllm``: run local models from the terminal.

Every command prints the generated text on stdout as it streams and everything
else (notes, progress, timings, errors) on stderr. Errors are one line and a
non-zero exit status: 1 for a failed command, 2 for bad usage, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from langchain_localllm.cli import commands, servers
from langchain_localllm.cli.console import PROG, error, install_warning_format
from langchain_localllm.cli.llm_factory import BACKENDS, add_model_options
from langchain_localllm.errors import LocalLLMError
from langchain_localllm.rag.files import DEFAULT_MAX_FILE_BYTES

EPILOG = """\
examples:
  localllm run "The first man on the moon was"          # built-in demo model (gibberish)
  localllm run --model ~/models/mistral.Q4_K_M.gguf "Hello" --timings
  localllm run --backend ollama --model llama3.2 "Why is the sky blue?"
  localllm chat --model llama3:8b                        # a model from Ollama's store, in process
  localllm models                                        # what is on this machine
  localllm extract --schema person.json --many notes/*.txt > people.jsonl
"""


def _version() -> str:
    from langchain_localllm import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run local LLMs (llama.cpp, GPT4All, Ollama, llamafile) from the terminal.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        add_model_options(p)
        p.set_defaults(func=func)
        return p

    p = command("run", commands.cmd_run, "stream the model's continuation of PROMPT")
    p.add_argument("prompt", metavar="PROMPT", help="the prompt (- reads standard input)")

    p = command("chat", commands.cmd_chat, "chat interactively (history kept; /exit or Ctrl-D ends)")
    p.add_argument("--system", help="system message for the conversation (/system TEXT changes it)")
    p.add_argument(
        "--hide-reasoning",
        action="store_true",
        help="do not show the model's reasoning (shown dimmed by default)",
    )

    p = command("search-queries", commands.cmd_search_queries, "write search queries similar to QUESTION")
    p.add_argument("question", metavar="QUESTION", help="the question (- reads standard input)")
    p.add_argument("-n", type=int, default=3, help="how many queries (default 3)")

    p = command("summarize", commands.cmd_summarize, "summarise a text FILE")
    p.add_argument("file", metavar="FILE", help="a UTF-8 text file (- reads standard input)")
    p.add_argument(
        "--method", choices=("auto", "stuff", "map_reduce", "refine"), default="auto", help="default: auto"
    )

    p = command("extract", commands.cmd_extract, "extract JSON records matching a schema from FILES")
    p.add_argument("files", metavar="FILE", nargs="+", help="UTF-8 text files (- reads standard input)")
    p.add_argument("--schema", required=True, help="a JSON schema file describing one record")
    p.add_argument("--many", action="store_true", help="any number of records per file (default: one)")
    p.add_argument("--output", "-o", help="write the JSON Lines here (default: standard output)")
    p.add_argument("--concurrency", type=int, default=2, help="files processed at once (default 2)")

    rag = sub.add_parser("rag", help="index documents and answer questions from them")
    rag_sub = rag.add_subparsers(dest="rag_command", metavar="ACTION", required=True)
    for name, func, help_text in (
        ("index", commands.cmd_rag_index, "index the documents of DIR (txt, md, pdf, html)"),
        ("ask", commands.cmd_rag_ask, "answer QUESTION from the indexed documents"),
        (
            "stats",
            commands.cmd_rag_stats,
            "print the index's chunks, files, size on disk and embedding model",
        ),
    ):
        p = rag_sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--index", help="index folder (default: ~/.cache/langchain-localllm/rag-index)")
        if name == "stats":
            continue
        add_model_options(p)
        p.add_argument(
            "--embeddings-model", help="GGUF embedding model (default: the built-in all-MiniLM-L6-v2)"
        )
        if name == "index":
            p.add_argument("dir", metavar="DIR", help="file or folder to index")
            p.add_argument(
                "--follow-symlinks",
                action="store_true",
                help="also index what symbolic links out of DIR point to (default: not followed)",
            )
            p.add_argument(
                "--max-file-size",
                type=float,
                default=DEFAULT_MAX_FILE_BYTES / 2**20,
                metavar="MB",
                help="leave out files larger than this, unread (default %(default)g; 0: no limit)",
            )
        else:
            p.add_argument("question", metavar="QUESTION", help="the question (- reads standard input)")
            p.add_argument("-k", type=int, default=4, help="passages to retrieve (default 4)")

    p = sub.add_parser("models", help="list the models available on this machine")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        help="only what this backend can run (default: a running Ollama's models and the GGUF files)",
    )
    p.add_argument("--base-url", help="server URL (default: $OLLAMA_HOST or http://localhost:11434)")
    p.set_defaults(func=commands.cmd_models)

    p = sub.add_parser("pull", help="download a model into Ollama, with a progress bar")
    p.add_argument("name", metavar="NAME", help="Ollama model name, e.g. llama3.2")
    p.add_argument("--backend", choices=BACKENDS, help="only ollama can pull (the default)")
    p.add_argument("--base-url", help="Ollama URL (default: $OLLAMA_HOST or http://localhost:11434)")
    p.set_defaults(func=commands.cmd_pull)

    servers.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``localllm`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    install_warning_format()
    try:
        return int(args.func(args))
    except LocalLLMError as exc:
        error(f"{exc} ({type(exc).__name__})" if not str(exc) else str(exc))
        return 1
    except BrokenPipeError:  # e.g. `localllm models | head -2`: the reader is gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # unreadable files and the like
        error(str(exc))
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
