"""The bench's text corpus: real prose present wherever rag-streams is installed, or a folder.

The default is the long descriptions (README texts) of the installed Python distributions,
sorted by name: deterministic for a given installation, and real technical English of the kind
a RAG pipeline indexes. ``--corpus DIR`` reads a folder's text files instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rag_streams.errors import CliError

__all__ = ["Document", "corpus_from_dir", "installed_descriptions"]

#: Descriptions shorter than this are mostly badges and links; longer ones are cut here so that
#: one huge README cannot make up most of the corpus.
MIN_CHARS, MAX_CHARS = 2_000, 24_000
_DOC_ID = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str


def installed_descriptions() -> list[Document]:
    """Every installed distribution's long description of at least MIN_CHARS, by doc_id."""
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        meta: Any = dist.metadata  # an email.message.Message
        name = (meta.get("Name") or "").strip().lower()
        if not name or name in seen:
            continue
        body = meta.get_payload() or meta.get("Description") or ""
        text = body.strip() if isinstance(body, str) else ""
        if len(text) >= MIN_CHARS:
            seen[name] = text[:MAX_CHARS]
    return sorted((Document(_DOC_ID.sub("-", name) + ".md", text) for name, text in seen.items()), key=_by_id)


def _by_id(doc: Document) -> str:
    return doc.doc_id


def corpus_from_dir(folder: Path) -> list[Document]:
    """The UTF-8 text files under ``folder`` (hidden ones skipped), doc_id = relative path."""
    if not folder.is_dir():
        raise CliError(f"--corpus: {folder} is not a folder")
    docs = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (UnicodeDecodeError, OSError):
            continue
        if text:
            docs.append(Document(rel.as_posix(), text))
    if not docs:
        raise CliError(f"--corpus: no UTF-8 text file under {folder}")
    return docs
