"""The messages of the pipeline as plain frozen dataclasses, and the input rules."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rag_streams.errors import BadInput

__all__ = [
    "DELETE",
    "LARGE_HEADERS",
    "REPAIR_HEADERS",
    "RETAG_HEADER",
    "UPSERT",
    "Chunk",
    "DeadLetter",
    "EmbeddingUpsert",
    "RawDocument",
    "check_doc_id",
    "check_version",
    "doc_key",
    "is_large",
    "is_repair",
    "retag_of",
    "validate_raw",
]

UPSERT = "UPSERT"
DELETE = "DELETE"
OPS = (UPSERT, DELETE)
TENANT_RE = re.compile(r"[a-z0-9_-]{1,64}")
MAX_DOC_ID_CHARS = 1024
MAX_VERSION = 2**63 - 1  # Avro long
#: Kafka header of a repair replay (``verify --repair``), carried from stage to stage.
REPAIR_HEADER = "rag-repair"
REPAIR_HEADERS = [(REPAIR_HEADER, b"1")]
#: Kafka header of a large document's chunks in the bulk lane (RAG_BULK_MIN_CHUNKS): published as
#: an update, not a bulk load, so the embed stage gives them the interactive lane's batch size.
LARGE_HEADER = "rag-large"
LARGE_HEADERS = [(LARGE_HEADER, b"1")]
#: Kafka header of a retag (an unchanged document re-published): the previous version, whose
#: stored points take the new version. Carried on one Chunk, then one EmbeddingUpsert (dim 0).
RETAG_HEADER = "rag-retag"
#: Kafka header of a tombstone in ``rag.documents.latest``: the deleted version (a reindex
#: replaying it deletes up to that version, never a newer re-creation of the document).
DELETED_VERSION_HEADER = "rag-deleted-version"


def _pairs(headers: Any) -> Any:
    """A message's headers (a list of pairs, a mapping or None) as (key, value) pairs."""
    return headers.items() if isinstance(headers, Mapping) else (headers or ())


def _flag(headers: Any, name: str) -> bool:
    return any(k == name and v == b"1" for k, v in _pairs(headers))


def is_repair(headers: Any) -> bool:
    """Whether a message's headers (a list of pairs or a mapping) mark a repair replay."""
    return _flag(headers, REPAIR_HEADER)


def is_large(headers: Any) -> bool:
    """Whether a message's headers mark a large document's chunk in the bulk lane (LARGE_HEADER)."""
    return _flag(headers, LARGE_HEADER)


def retag_of(headers: Any) -> int | None:
    """The previous version a retag record moves the document from; None: not a retag."""
    for k, v in _pairs(headers):
        if k == RETAG_HEADER:
            try:
                return int(v)
            except (TypeError, ValueError):
                raise BadInput(f"bad {RETAG_HEADER} header {v[:40]!r}") from None
    return None


def doc_key(tenant_id: str, doc_id: str) -> str:
    """The Kafka key of every pipeline topic: all messages of a document share a partition."""
    return f"{tenant_id}/{doc_id}"


@dataclass(frozen=True, slots=True)
class RawDocument:
    tenant_id: str
    doc_id: str
    version: int
    op: str = UPSERT
    text: str = ""
    content_type: str = "text/plain"
    source: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    produced_at: int = 0

    @property
    def key(self) -> str:
        return doc_key(self.tenant_id, self.doc_id)


@dataclass(frozen=True, slots=True)
class Chunk:
    tenant_id: str
    doc_id: str
    version: int
    chunk_id: str
    chunk_index: int
    chunk_count: int
    text: str
    content_hash: str
    op: str = UPSERT
    metadata: dict[str, str] = field(default_factory=dict)
    produced_at: int = 0

    @property
    def key(self) -> str:
        return doc_key(self.tenant_id, self.doc_id)


@dataclass(frozen=True, slots=True)
class EmbeddingUpsert:
    tenant_id: str
    doc_id: str
    version: int
    chunk_id: str
    chunk_index: int
    chunk_count: int
    text: str
    content_hash: str
    vector: bytes
    model: str
    dim: int
    op: str = UPSERT
    metadata: dict[str, str] = field(default_factory=dict)
    produced_at: int = 0

    @property
    def key(self) -> str:
        return doc_key(self.tenant_id, self.doc_id)

    @classmethod
    def of(cls, chunk: Chunk, vector: bytes, model: str, dim: int) -> EmbeddingUpsert:
        """The embedding record of ``chunk``: its fields, with the vector and the model that made it."""
        return cls(
            tenant_id=chunk.tenant_id,
            doc_id=chunk.doc_id,
            version=chunk.version,
            chunk_id=chunk.chunk_id,
            chunk_index=chunk.chunk_index,
            chunk_count=chunk.chunk_count,
            text=chunk.text,
            content_hash=chunk.content_hash,
            vector=vector,
            model=model,
            dim=dim,
            op=chunk.op,
            metadata=chunk.metadata,
            produced_at=chunk.produced_at,
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    error_class: str
    message: str
    stage: str
    time: int


def tombstone_delete(key: bytes | None, accepted_version: int | None) -> RawDocument | None:
    """A Kafka tombstone (null value) on the raw topic: a DELETE of the document at its accepted
    version (a delete wins over an upsert of the same version). None when nothing was accepted."""
    tenant, doc_id = parse_key(key)
    if accepted_version is None:
        return None
    return RawDocument(tenant, doc_id, accepted_version, op=DELETE)


def parse_key(key: bytes | None) -> tuple[str, str]:
    """``tenant_id/doc_id`` of a message key, checked strictly (UTF-8, tenant and doc_id rules)."""
    try:
        tenant, sep, doc_id = (key or b"").decode("utf-8").partition("/")
    except UnicodeDecodeError as exc:
        raise BadInput(f"key {(key or b'')[:100]!r} is not UTF-8") from exc
    if not sep:
        raise BadInput(f"key {key[:100] if key else key!r} is not tenant_id/doc_id")
    validate_raw(RawDocument(tenant, doc_id, 0, op=DELETE), max_bytes=0)
    return tenant, doc_id


def check_doc_id(doc_id: object) -> str:
    """The doc_id rule, the one place it lives (HTTP API, producer, CLI, the raw topic's check):
    a string of 1..1024 characters, not whitespace only, no control character (Unicode Cc, or a
    lone surrogate), and no ``.`` or ``..`` path segment (``/`` or ``\\`` separated)."""
    if not isinstance(doc_id, str) or not 1 <= len(doc_id) <= MAX_DOC_ID_CHARS:
        raise BadInput(f"doc_id must be 1..{MAX_DOC_ID_CHARS} characters")
    if doc_id.isspace():
        raise BadInput("doc_id must not be whitespace only")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in doc_id):
        raise BadInput(f"doc_id {doc_id[:80]!r} contains a control character")
    if any(segment in (".", "..") for segment in re.split(r"[/\\]", doc_id)):
        raise BadInput(f"doc_id {doc_id[:80]!r} has a '.' or '..' path segment")
    return doc_id


def check_version(version: object, name: str = "version") -> int:
    """A version: an integer (not a bool, not a string) in 0..2^63-1, the range of an Avro long."""
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= MAX_VERSION:
        raise BadInput(f"'{name}' must be an integer from 0 to 2^63-1")
    return version


def validate_raw(doc: RawDocument, *, max_bytes: int) -> RawDocument:
    """Check a decoded raw document against the input rules; raise BadInput naming the rule."""
    if not TENANT_RE.fullmatch(doc.tenant_id):
        raise BadInput(f"tenant_id {doc.tenant_id[:80]!r} does not match [a-z0-9_-]{{1,64}}")
    check_doc_id(doc.doc_id)
    check_version(doc.version)
    if doc.op not in OPS:
        raise BadInput(f"unknown op {doc.op!r}")
    if doc.op == UPSERT:
        if not doc.text.strip():
            raise BadInput("text is empty")
        size = len(doc.text.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise BadInput(f"text is {size} bytes, over the {max_bytes} byte limit")
    return doc


def from_json_obj(obj: Any) -> RawDocument:
    """A RawDocument from a decoded JSON object (the edges: CLI, HTTP)."""
    if not isinstance(obj, dict):
        raise BadInput("expected a JSON object")
    missing = [f for f in ("tenant_id", "doc_id", "version") if f not in obj]
    if missing:
        raise BadInput(f"missing field(s): {', '.join(missing)}")
    meta = obj.get("metadata") or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise BadInput("metadata must be an object of strings")
    try:
        return RawDocument(
            tenant_id=str(obj["tenant_id"]),
            doc_id=str(obj["doc_id"]),
            version=int(obj["version"]),
            op=str(obj.get("op", UPSERT)),
            text=str(obj.get("text", "")),
            content_type=str(obj.get("content_type", "text/plain")),
            source=str(obj.get("source", "")),
            metadata=dict(meta),
            produced_at=int(obj.get("produced_at", 0)),
        )
    except (TypeError, ValueError) as exc:
        raise BadInput(f"bad field value: {exc}") from exc
