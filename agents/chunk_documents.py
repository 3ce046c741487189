"""chunk: raw documents -> version check -> latest (compacted) -> chunks.

Two agents, one per lane (rag_streams.pipeline.lanes): the raw topic's documents go to the chunks
topic, the bulk raw topic's (``publish --bulk``) and any document of RAG_BULK_MIN_CHUNKS chunks or
more to the bulk chunks topic; the runtime takes their turns (one event at a time, the interactive
lane first), with one table of accepted versions."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from rag_streams.adapters.codecs import CHUNK, RAW
from rag_streams.errors import BadInput, retry_transient
from rag_streams.observability import metrics, stage_tracing, tracing
from rag_streams.pipeline.lanes import chunk_lane
from rag_streams.rules.chunking import chunk_document
from rag_streams.rules.records import (
    DELETE,
    DELETED_VERSION_HEADER,
    LARGE_HEADERS,
    REPAIR_HEADERS,
    RawDocument,
    doc_key,
    is_repair,
    parse_key,
    tombstone_delete,
    validate_raw,
)
from rag_streams.rules.retag import document_hash, retag_chunk, retag_headers, retags
from rag_streams.rules.versions import DocState, Verdict, judge
from rag_streams.tables.versions import accepted_versions

if TYPE_CHECKING:
    from rag_streams.pipeline.app import Pipeline

log = logging.getLogger(__name__)
STAGE = "chunk"


def decode_raw(key: bytes | None, value: bytes | None, *, max_bytes: int) -> RawDocument:
    """Decode and validate a raw message; its key must be ``tenant/doc_id``."""
    doc = validate_raw(RAW.decode(value), max_bytes=max_bytes)
    if key != doc.key.encode():
        raise BadInput(f"message key {key[:100] if key else key!r} is not tenant_id/doc_id {doc.key[:100]!r}")
    return doc


def register(p: Pipeline) -> Any:
    runtime, settings, services = p.runtime(STAGE), p.settings, p.services
    accepted = accepted_versions(p)
    latest_topic = p.topic("latest")
    lanes = {"interactive": p.topic("chunks"), "bulk": p.topic("chunks_bulk")}  # lane -> where its chunks go
    bulk_min_chunks = settings.bulk_min_chunks if settings.bulk_lane else 0  # no bulk agents: no bulk lane

    async def decode(event: Any) -> tuple[RawDocument | None, DocState | None]:
        """The document (a delete for a Kafka tombstone; None: nothing live to delete) and its state."""
        key = event.message.key
        if event.message.value is None:  # a Kafka tombstone: delete the accepted version
            state = DocState.from_json(accepted.get(doc_key(*parse_key(key))))
            tomb = tombstone_delete(key, None if state is None or state.deleted else state.version)
            if tomb is None:
                log.info("tombstone for %r: no live version to delete", key, extra={"stage": STAGE})
            return tomb, state
        schema_id = RAW.unfetched_schema_id(event.message.value)
        if schema_id is not None:  # Confluent framing: fetch the writer schema once (then cached)
            await retry_transient(RAW.fetch_schema, schema_id, what=f"schema registry id {schema_id}", attempts=None)
        doc = decode_raw(key, event.message.value, max_bytes=settings.max_doc_bytes)
        return doc, DocState.from_json(accepted.get(doc.key))

    async def handle(event: Any, lane: str) -> None:
        doc, state = await decode(event)
        if doc is None:
            return
        repair = is_repair(event.message.headers)
        verdict = judge(state, doc.version, is_delete=doc.op == DELETE, repair=repair)
        stage_tracing.annotate(event, doc)
        tracing.set_attributes({"rag.verdict": verdict.value})
        if verdict not in (Verdict.APPLY, Verdict.REPAIR):
            if verdict is Verdict.STALE:
                metrics.stale_writes_dropped_total.labels(STAGE).inc()
            # counted above; at debug only: a replayed topic drops every message it already applied
            extra = {"stage": STAGE, "tenant": doc.tenant_id}
            log.debug("dropped %s v%d: %s", doc.key, doc.version, verdict.value, extra=extra)
            return
        embedder = await services.embedder()
        size, overlap = settings.chunk_tokens, settings.chunk_overlap
        digest = (
            None if doc.op == DELETE else document_hash(doc, size=size, overlap=overlap, tokenizer=embedder.model_name)
        )
        partition, key = event.message.partition, doc.key.encode()
        headers: list[tuple[str, bytes]] | None
        retag = settings.retag_unchanged and retags(state, verdict, doc, digest, repair=repair)
        if retag:  # unchanged since the live version: one record instead of its chunks (rules/retag.py)
            assert state is not None and digest is not None
            chunks, headers = [retag_chunk(doc, state, digest)], retag_headers(state.version)
            count = state.chunk_count
        else:
            chunks = await asyncio.to_thread(chunk_document, doc, embedder, size=size, overlap=overlap)
            headers, count = (REPAIR_HEADERS if repair else None), len(chunks)
        stage_tracing.annotate(event, doc, chunks=len(chunks))
        # a large document's chunks take the bulk lane: updates behind it in this partition overtake it
        routed = chunk_lane(lane, len(chunks), min_chunks=bulk_min_chunks)  # a retag is one record
        if routed != lane:  # marked: the embed stage gives them the interactive lane's batch size
            headers = [*(headers or []), *LARGE_HEADERS]
        lane = routed
        async with runtime.emit(event):  # the sends and the version they record: one transaction
            if verdict is Verdict.APPLY:  # the compacted source of truth, in the same transaction as the chunks
                deleted = [(DELETED_VERSION_HEADER, str(doc.version).encode())] if doc.op == DELETE else None
                value = None if doc.op == DELETE else RAW.single_object(event.message.value, doc)
                await latest_topic.send(key=key, value=value, partition=partition, headers=deleted)
            for chunk in chunks:
                await lanes[lane].send(
                    key=key, value=CHUNK.encode(chunk), partition=partition, headers=tracing.inject(headers)
                )
            if verdict is Verdict.APPLY:  # with the content hash: the next unchanged version is a retag
                accepted[doc.key] = DocState(
                    doc.version, doc.op == DELETE, digest, 0 if digest is None else count
                ).to_json()
        metrics.tenant_chunks_queued_total.labels(doc.tenant_id, lane).inc(len(chunks))  # records, as embed counts
        if retag:
            metrics.retagged_total.labels(STAGE).inc()
        if verdict is Verdict.APPLY:
            runtime.observe(doc.produced_at)

    app = p.app

    @app.agent(p.topic("raw"), name=f"{__name__}.chunk_documents")
    async def chunk_documents(stream: Any) -> None:
        await runtime.each(stream, handle, lane="interactive")

    if p.settings.bulk_lane:  # RAG_BULK_LANE

        @app.agent(p.topic("raw_bulk"), name=f"{__name__}.chunk_bulk_documents")
        async def chunk_bulk_documents(stream: Any) -> None:
            await runtime.each(stream, handle, lane="bulk")

    return chunk_documents
