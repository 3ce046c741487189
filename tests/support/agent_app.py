"""The agent tests' app, built once: the real agents and tables of every stage under Faust's test
context, in-memory tables, small chunks, no HTTP API. Test modules import from here, not from their
conftest: every test folder has a conftest.py, and only one holds the name ``conftest`` at a time."""

from __future__ import annotations

import asyncio
import os

from rag_streams.adapters.embedding import to_bytes
from rag_streams.pipeline.app import create_app
from rag_streams.rules.chunking import chunk_document
from rag_streams.rules.records import DELETE, EmbeddingUpsert, RawDocument
from rag_streams.settings import load_settings
from rag_streams.testing import HashingEmbedder

# The agents' app: in-memory tables, small chunks, every stage, no HTTP API.
_AGENT_ENV = {
    "RAG_TABLE_STORE": "memory://",
    "RAG_PROCESSING_GUARANTEE": "at_least_once",
    "RAG_TOPIC_PREFIX": "agenttest",
    "RAG_CHUNK_TOKENS": "20",
    "RAG_CHUNK_OVERLAP": "4",
    "RAG_EMBED_BATCH": "8",
    "RAG_EMBED_WINDOW_S": "0.1",
    "RAG_BULK_LANE": "true",
}
settings = load_settings({**os.environ, **_AGENT_ENV}, dotenv=None)
pipeline = create_app(settings, http=False)
app, services, names = pipeline.app, pipeline.services, pipeline.names
chunk_documents, embed_chunks, index_embeddings = (pipeline.agents[r] for r in ("chunk", "embed", "index"))
# the bulk lane's agents (rag_streams.pipeline.lanes)
chunk_bulk_documents = app.agents["rag_streams.agents.chunk_documents.chunk_bulk_documents"]
embed_bulk_chunks = app.agents["rag_streams.agents.embed_chunks.embed_bulk_chunks"]
TABLES = ("accepted-versions", "applied-versions", "chunk-slots", "embedded-slots", "embedded-docs")
accepted_versions, applied_versions, chunk_slots, embedded_slots, embedded_docs = (pipeline.tables[t] for t in TABLES)


async def settle(seconds: float = 0.4) -> None:
    """Let take_events() flush its batch (RAG_EMBED_WINDOW_S is 0.1 s here)."""
    await asyncio.sleep(seconds)


def upserts(doc: RawDocument, embedder: HashingEmbedder) -> list[EmbeddingUpsert]:
    """What the embed stage would emit for ``doc`` (this app's chunk size), for feeding the index agent."""
    chunks = chunk_document(doc, embedder, size=20, overlap=4)
    vectors = embedder.embed([c.text for c in chunks]) if doc.op != DELETE else []
    return [
        EmbeddingUpsert(
            c.tenant_id,
            c.doc_id,
            c.version,
            c.chunk_id,
            c.chunk_index,
            c.chunk_count,
            c.text,
            c.content_hash,
            to_bytes(vectors[i]) if doc.op != DELETE else b"",
            "hashing-fake",
            384 if doc.op != DELETE else 0,
            op=c.op,
        )
        for i, c in enumerate(chunks)
    ]
