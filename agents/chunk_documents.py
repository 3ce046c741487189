"""chunk: raw documents -> version check -> latest (compacted) -> chunks."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from rag_streams import metrics
from rag_streams._faust.acks import redelivered_unless_done
from rag_streams._faust.commit_gate import emitting_for
from rag_streams.app import app, chunks_topic, latest_topic, raw_topic, services, settings
from rag_streams.chunking import chunk_document
from rag_streams.codecs import CHUNK, RAW
from rag_streams.deadletter import dead_letter
from rag_streams.errors import BadInput, PermanentError, retry_transient
from rag_streams.records import (
    DELETE,
    DELETED_VERSION_HEADER,
    REPAIR_HEADERS,
    RawDocument,
    doc_key,
    is_repair,
    parse_key,
    tombstone_delete,
    validate_raw,
)
from rag_streams.tables.accepted_versions import accepted_versions
from rag_streams.versions import DocState, Verdict, judge

log = logging.getLogger(__name__)
STAGE = "chunk"


def decode_raw(key: bytes | None, value: bytes | None) -> RawDocument:
    """Decode and validate a raw message; its key must be ``tenant/doc_id``."""
    doc = validate_raw(RAW.decode(value), max_bytes=settings.max_doc_bytes)
    if key != doc.key.encode():
        raise BadInput(f"message key {key[:100] if key else key!r} is not tenant_id/doc_id {doc.key[:100]!r}")
    return doc


@app.agent(raw_topic)
async def chunk_documents(stream: Any) -> None:
    async for event in stream.events():
        with redelivered_unless_done(app.consumer, [event]):  # a stop mid-event: not acked
            try:
                await _process(event)
            except PermanentError as exc:
                await dead_letter(event, exc, stage=STAGE)
        metrics.messages_processed_total.labels(STAGE).inc()


async def _process(event: Any) -> None:
    key = event.message.key
    if event.message.value is None:  # a Kafka tombstone: delete the accepted version
        state = DocState.from_json(accepted_versions.get(doc_key(*parse_key(key))))
        tomb = tombstone_delete(key, None if state is None or state.deleted else state.version)
        if tomb is None:
            log.info("tombstone for %r: no live version to delete", key, extra={"stage": STAGE})
            return
        doc = tomb
    else:
        schema_id = RAW.unfetched_schema_id(event.message.value)
        if schema_id is not None:  # Confluent framing: fetch the writer schema once (then cached)
            await retry_transient(RAW.fetch_schema, schema_id, what=f"schema registry id {schema_id}", attempts=None)
        doc = decode_raw(key, event.message.value)
        state = DocState.from_json(accepted_versions.get(doc.key))
    repair = is_repair(event.message.headers)
    verdict = judge(state, doc.version, is_delete=doc.op == DELETE, repair=repair)
    if verdict not in (Verdict.APPLY, Verdict.REPAIR):
        if verdict is Verdict.STALE:
            metrics.stale_writes_dropped_total.labels(STAGE).inc()
        # counted above; at debug only: a replayed topic drops every message it already applied
        log.debug(
            "dropped %s v%d: %s", doc.key, doc.version, verdict.value, extra={"stage": STAGE, "tenant": doc.tenant_id}
        )
        return
    embedder = await services.embedder()
    chunks = await asyncio.to_thread(
        chunk_document, doc, embedder, size=settings.chunk_tokens, overlap=settings.chunk_overlap
    )
    partition = event.message.partition
    key = doc.key.encode()
    headers = REPAIR_HEADERS if repair else None
    async with emitting_for(event):  # the sends and the version they record: one transaction
        if verdict is Verdict.APPLY:  # the compacted source of truth, in the same transaction as the chunks
            deleted = [(DELETED_VERSION_HEADER, str(doc.version).encode())] if doc.op == DELETE else None
            value = None if doc.op == DELETE else RAW.single_object(event.message.value, doc)
            await latest_topic.send(key=key, value=value, partition=partition, headers=deleted)
        for chunk in chunks:
            await chunks_topic.send(key=key, value=CHUNK.encode(chunk), partition=partition, headers=headers)
        if verdict is Verdict.APPLY:
            accepted_versions[doc.key] = DocState(doc.version, doc.op == DELETE).to_json()
    if verdict is Verdict.REPAIR:
        return
    if doc.produced_at:
        metrics.pipeline_latency_seconds.labels(STAGE).observe(max(0.0, time.time() - doc.produced_at / 1000))
