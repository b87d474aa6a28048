"""Turn one file into LangChain ``Document`` s: text, Markdown, PDF and HTML.

Well-kept, light loaders: ``pypdf`` (pure Python) for PDF, BeautifulSoup with the
standard library's ``html.parser`` for HTML; text and Markdown are read as UTF-8.
Every problem is a :class:`~langchain_localllm.errors.DocumentLoadError` naming the
file and what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from langchain_core.documents import Document

from langchain_localllm.errors import DocumentLoadError, MissingDependencyError

__all__ = ["SUPPORTED_SUFFIXES", "load_file"]

_TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".text")
_HTML_SUFFIXES = (".html", ".htm", ".xhtml")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DocumentLoadError(f"{path} does not exist.", path=str(path)) from None
    except OSError as error:  # permissions, a directory, an I/O error
        raise DocumentLoadError(
            f"{path} could not be read ({error.strerror or error}). Check its permissions.",
            path=str(path),
        ) from error


def _decode_text(path: Path, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise DocumentLoadError(
            f"{path} looks binary (it contains NUL bytes), not text. Remove it from the folder "
            "or give it a supported extension (.pdf, .html, .md, .txt).",
            path=str(path),
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentLoadError(
            f"{path} is not UTF-8 text (byte {error.start} is invalid). Convert it to UTF-8.",
            path=str(path),
        ) from error


def _load_text(path: Path) -> list[Document]:
    text = _decode_text(path, _read_bytes(path))
    return [Document(page_content=text, metadata={"source": str(path)})]


def _load_html(path: Path) -> list[Document]:
    try:
        from bs4 import BeautifulSoup
    except ImportError as error:
        raise MissingDependencyError(
            "Indexing HTML needs beautifulsoup4: pip install 'langchain-localllm[rag]'",
            package="beautifulsoup4",
            extra="rag",
        ) from error
    html = _decode_text(path, _read_bytes(path))
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    body = soup.body or soup
    lines = (line.strip() for line in body.get_text("\n").splitlines())
    text = "\n".join(line for line in lines if line)
    metadata = {"source": str(path)}
    if title:
        metadata["title"] = title
    return [Document(page_content=text, metadata=metadata)]


def _load_pdf(path: Path) -> list[Document]:
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

    data = _read_bytes(path)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentLoadError(
                f"{path} is an encrypted PDF; decrypt it first (e.g. qpdf --decrypt).", path=str(path)
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except DocumentLoadError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as error:
        raise DocumentLoadError(f"{path} is not a readable PDF: {error}", path=str(path)) from error
    return [
        Document(page_content=text, metadata={"source": str(path), "page": number})
        for number, text in enumerate(pages, start=1)
        if text.strip()
    ]


_LOADERS: dict[str, Callable[[Path], list[Document]]] = {
    **dict.fromkeys(_TEXT_SUFFIXES, _load_text),
    **dict.fromkeys(_HTML_SUFFIXES, _load_html),
    ".pdf": _load_pdf,
}

SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(sorted(_LOADERS))
"""File extensions :func:`load_file` understands."""


def load_file(path: str | Path) -> list[Document]:
    """The documents in one file (one per PDF page with text), with ``source`` metadata.

    Raises:
        DocumentLoadError: the file is missing, unreadable, binary, not UTF-8, a broken
            or encrypted PDF, of an unsupported type, or has no text at all.
    """
    file = Path(path)
    loader = _LOADERS.get(file.suffix.lower())
    if loader is None:
        raise DocumentLoadError(
            f"{file} has an unsupported extension {file.suffix!r}; supported: "
            f"{', '.join(SUPPORTED_SUFFIXES)}.",
            path=str(file),
        )
    documents = [d for d in loader(file) if d.page_content.strip()]
    if not documents:
        raise DocumentLoadError(
            f"{file} has no text to index (it is empty, or a PDF of scanned images without a text layer).",
            path=str(file),
        )
    return documents
