"""Retag: an unchanged document re-published costs one record per stage and one store write.

The chunk stage keeps the hash of each accepted version's content (:func:`document_hash`: the
text, the metadata and what chunking depends on) with its chunk count. A new version whose hash
equals that of the live accepted version would chunk into the same chunks, so instead of its
chunks the stage emits ONE retag record (:func:`retag_chunk`, marked by the ``rag-retag`` header
with the previous version; the Avro schemas are unchanged, so no reader sees a new fingerprint).
The embed stage forwards it when it emitted that previous version in full
(:func:`rag_streams.rules.embed_plan.plan_embeddings`); the index stage moves the document's
stored points from the previous version to the new one with one filtered payload update
(:func:`rag_streams.rules.indexing.plan_batch`). Anything that does not match is dead-lettered,
never lost: ``verify --repair`` re-chunks and re-embeds the document.

Rolling upgrade: a worker that does not know the header would take a retag record for a chunk
with empty text, so upgrade the embed and index workers before the chunk workers (or start
the chunk workers with ``RAG_RETAG_UNCHANGED=false`` and turn it on once all are upgraded).
"""

from __future__ import annotations

import hashlib
import json

from rag_streams.rules.records import DELETE, RETAG_HEADER, UPSERT, Chunk, RawDocument
from rag_streams.rules.versions import DocState, Verdict

__all__ = ["document_hash", "retag_chunk", "retag_headers", "retags"]


def document_hash(doc: RawDocument, *, size: int, overlap: int, tokenizer: str) -> str:
    """sha256 of everything a version's chunks and point payloads are made of: the text, the
    metadata (sorted), the chunking settings and the tokenizer (the model) that cut them."""
    body = json.dumps(
        [doc.text, sorted(doc.metadata.items()), size, overlap, tokenizer], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


def retags(
    state: DocState | None, verdict: Verdict, doc: RawDocument, digest: str | None, *, repair: bool = False
) -> bool:
    """Whether an accepted version is a retag of the live accepted one: a new version (not a
    repair replay, which always re-chunks), an upsert, with the same content hash."""
    return (
        verdict is Verdict.APPLY
        and not repair
        and doc.op == UPSERT
        and digest is not None
        and state is not None
        and not state.deleted
        and state.content == digest
        and state.chunk_count > 0
        and doc.version > state.version
    )


def retag_chunk(doc: RawDocument, state: DocState, digest: str) -> Chunk:
    """The one record a retag sends on the chunks topic: the document's key, new version, chunk
    count and metadata, no text (header :func:`retag_headers` with the previous version)."""
    assert doc.op != DELETE
    return Chunk(
        tenant_id=doc.tenant_id,
        doc_id=doc.doc_id,
        version=doc.version,
        chunk_id="",
        chunk_index=0,
        chunk_count=state.chunk_count,
        text="",
        content_hash=digest,
        metadata=doc.metadata,
        produced_at=doc.produced_at,
    )


def retag_headers(previous: int) -> list[tuple[str, bytes]]:
    return [(RETAG_HEADER, str(previous).encode())]
