"""Turn one file into LangChain ``Document`` s: text, Markdown, PDF and HTML.

Well-kept, light loaders: ``pypdf`` (pure Python) for PDF, BeautifulSoup with the
standard library's ``html.parser`` for HTML; text and Markdown are read as UTF-8.
Only a regular file is read, up to a size limit (a named pipe never makes it wait). Every
problem is a :class:`~langchain_localllm.errors.DocumentLoadError` naming the file (its name
escaped, see :func:`~langchain_localllm.rag.files.display_name`) and what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from langchain_core.documents import Document

from langchain_localllm.errors import DocumentLoadError, MissingDependencyError
from langchain_localllm.rag.files import DEFAULT_MAX_FILE_BYTES, display_name

__all__ = ["SUPPORTED_SUFFIXES", "load_file"]

_TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".text")
_HTML_SUFFIXES = (".html", ".htm", ".xhtml")


def _decode_text(path: Path, data: bytes) -> str:
    name = display_name(path)
    if b"\x00" in data[:8192]:
        raise DocumentLoadError(
            f"{name} looks binary (it contains NUL bytes), not text. Remove it from the folder "
            "or give it a supported extension (.pdf, .html, .md, .txt).",
            path=name,
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentLoadError(
            f"{name} is not UTF-8 text (byte {error.start} is invalid). Convert it to UTF-8.",
            path=name,
        ) from error


def _load_text(path: Path, data: bytes) -> list[Document]:
    text = _decode_text(path, data)
    return [Document(page_content=text, metadata={"source": display_name(path)})]


def _load_html(path: Path, data: bytes) -> list[Document]:
    try:
        from bs4 import BeautifulSoup
    except ImportError as error:
        raise MissingDependencyError(
            "Indexing HTML needs beautifulsoup4: pip install 'langchain-localllm[rag]'",
            package="beautifulsoup4",
            extra="rag",
        ) from error
    html = _decode_text(path, data)
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    body = soup.body or soup
    lines = (line.strip() for line in body.get_text("\n").splitlines())
    text = "\n".join(line for line in lines if line)
    metadata = {"source": display_name(path)}
    if title:
        metadata["title"] = title
    return [Document(page_content=text, metadata=metadata)]


def _load_pdf(path: Path, data: bytes) -> list[Document]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError as error:
        raise MissingDependencyError(
            "Indexing PDF needs pypdf: pip install 'langchain-localllm[rag]'",
            package="pypdf",
            extra="rag",
        ) from error
    import io

    name = display_name(path)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentLoadError(
                f"{name} is an encrypted PDF; decrypt it first (e.g. qpdf --decrypt).", path=name
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except DocumentLoadError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as error:
        raise DocumentLoadError(f"{name} is not a readable PDF: {error}", path=name) from error
    return [
        Document(page_content=text, metadata={"source": name, "page": number})
        for number, text in enumerate(pages, start=1)
        if text.strip()
    ]


_LOADERS: dict[str, Callable[[Path, bytes], list[Document]]] = {
    **dict.fromkeys(_TEXT_SUFFIXES, _load_text),
    **dict.fromkeys(_HTML_SUFFIXES, _load_html),
    ".pdf": _load_pdf,
}

SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(sorted(_LOADERS))
"""File extensions :func:`load_file` understands."""


def load_file(
    path: str | Path, *, data: bytes | None = None, max_bytes: int | None = DEFAULT_MAX_FILE_BYTES
) -> list[Document]:
    """The documents in one file (one per PDF page with text), with ``source`` metadata.

    ``data`` is the file's content when the caller has read it already (``path`` then only
    names it and picks the loader by its extension); otherwise the file is read, if it is a
    regular file of at most ``max_bytes`` (None: no limit).

    Raises:
        DocumentLoadError: the file is missing, unreadable, not a regular file, larger than
            ``max_bytes``, binary, not UTF-8, a broken or encrypted PDF, of an unsupported
            type, or has no text at all.
    """
    from langchain_localllm.rag.files import read_regular

    file = Path(path)
    name = display_name(file)
    loader = _LOADERS.get(file.suffix.lower())
    if loader is None:
        raise DocumentLoadError(
            f"{name} has an unsupported extension {display_name(file.suffix)!r}; supported: "
            f"{', '.join(SUPPORTED_SUFFIXES)}.",
            path=name,
        )
    documents = [
        d
        for d in loader(file, read_regular(file, max_bytes) if data is None else data)
        if d.page_content.strip()
    ]
    if not documents:
        raise DocumentLoadError(
            f"{name} has no text to index (it is empty, or a PDF of scanned images without a text layer).",
            path=name,
        )
    return documents
