"""Tracing over the real agents: a published document's trace runs from its publish through the
three stages to the store write, linked by the ``traceparent`` header of each record; off, no
record gets a header and nothing is recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import AsyncMock, patch

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rag_streams.adapters.producer import DocumentProducer
from rag_streams.http.search import SearchRequest, search
from rag_streams.observability import tracing
from rag_streams.rules.chunking import chunk_document
from rag_streams.rules.records import REPAIR_HEADERS, RawDocument

from support.agent_app import chunk_documents, embed_chunks, index_embeddings, names, settings, settle

TEXT = " ".join(f"word{i}" for i in range(60))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)


async def publish(docs: list[RawDocument]) -> list[tuple[bytes, bytes, Any]]:
    """Publish through the real DocumentProducer, its Kafka producer a mock: (key, value, headers) sent."""
    with patch("rag_streams.adapters.producer.AIOKafkaProducer") as kafka:
        kafka.return_value.send_and_wait = AsyncMock()
        producer = DocumentProducer(settings)
        for doc in docs:
            await producer.send(doc)
    return [(c.kwargs["key"], c.args[1], c.kwargs["headers"]) for c in kafka.return_value.send_and_wait.call_args_list]


async def run_pipeline(records: list[tuple[bytes, bytes, Any]], sent: Any) -> None:
    """The records through chunk, then the chunks (headers as sent) through embed, then index."""
    async with chunk_documents.test_context() as agent:
        for key, value, headers in records:
            await agent.put(value, key=key, headers=headers)
        await settle()  # the last document's chunking (in a thread) ends before the agent stops
    for stage, topic in ((embed_chunks, names.chunks), (index_embeddings, names.embeddings)):
        async with stage.test_context() as agent:
            for m in sent.on(topic):
                await agent.put(m["value"], key=m["key"], headers=m["headers"])
            await settle()


def one(spans: list[ReadableSpan], name: str, **attributes: Any) -> ReadableSpan:
    found = [s for s in spans if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())]
    assert len(found) == 1, "\n".join(
        [f"{name} {attributes}"]
        + [
            f"{s.name} {s.context.span_id:x} <- {s.parent.span_id if s.parent else 0:x} {dict(s.attributes or {})} {s.status.status_code} {[e.attributes for e in s.events]}"
            for s in spans
        ]
    )
    return found[0]


async def test_a_published_document_is_one_trace_from_publish_to_the_upsert(
    sent: Any, fakes: Any, spans: InMemorySpanExporter
) -> None:
    docs = [RawDocument("acme", "a.md", 7, text=TEXT), RawDocument("acme", "b.md", 7, text="a short second one")]
    await run_pipeline(await publish(docs), sent)

    finished = list(spans.get_finished_spans())
    for doc in docs:
        n = len(chunk_document(doc, fakes["embedder"], size=20, overlap=4))
        ids = {"rag.tenant": "acme", "rag.doc_id": doc.doc_id, "rag.version": 7}
        pub = one(finished, "publish", **ids)
        trace = [s for s in finished if s.context.trace_id == pub.context.trace_id]
        chunk = one(trace, "chunk", **ids, **{"rag.chunks": n, "rag.verdict": "apply"})
        embed = one(trace, "embed", **ids, **{"rag.chunk_count": n, "rag.chunks_embed": n})
        index = one(trace, "index", **ids, **{"rag.chunk_count": n, "rag.chunks_apply": 1})
        upsert = one(trace, "vectorstore.upsert", **ids, **{"rag.points": n})
        # one chain: each span the parent of the next, across the Kafka records' headers
        assert pub.parent is None
        assert chunk.parent.span_id == pub.context.span_id
        assert embed.parent.span_id == chunk.context.span_id
        assert index.parent.span_id == embed.context.span_id
        assert upsert.parent.span_id == index.context.span_id
        assert upsert.attributes["rag.batch_points"] >= n  # the write's points (one write can hold both)
        assert {s.name for s in trace} == {"publish", "chunk", "embed", "index", "vectorstore.upsert"}
    # each batch has a span of its own, linked to the documents it carried
    for stage in ("embed", "index"):
        batch = [s for s in finished if s.name == f"{stage} batch"]
        linked = {link.context.span_id for s in batch for link in s.links}
        assert {s.parent.span_id for s in finished if s.name == stage} <= linked
    model = [s for s in finished if s.name == "embed.model"]
    assert model and all(
        s.parent.span_id in {b.context.span_id for b in finished if b.name == "embed batch"} for s in model
    )


async def test_traced_records_keep_their_other_headers(spans: InMemorySpanExporter) -> None:
    with tracing.span("x"):
        headers = tracing.inject(REPAIR_HEADERS)
        again = tracing.inject(headers)  # a record re-sent: one traceparent, the current one
    assert REPAIR_HEADERS == [("rag-repair", b"1")]  # the shared constant is not changed
    assert headers[0] == ("rag-repair", b"1") and [k for k, _ in headers] == ["rag-repair", "traceparent"]
    assert again == headers


async def test_off_no_header_and_no_span(sent: Any, fakes: Any) -> None:
    assert not tracing.enabled()
    records = await publish([RawDocument("acme", "a.md", 1, text=TEXT)])
    assert records[0][2] is None
    await run_pipeline(records, sent)
    assert sent.on(names.embeddings) and all(
        m["headers"] is None for m in [*sent.on(names.chunks), *sent.on(names.embeddings)]
    )


async def test_a_search_has_its_own_spans(fakes: Any, spans: InMemorySpanExporter) -> None:
    embedder = fakes["embedder"]
    await fakes["store"].ensure_tenant("acme", embedder.dim, embedder.model_name)
    with tracing.span("search"):
        await search(fakes["store"], embedder, "acme", SearchRequest("anything"), timeout_s=10)
    finished = spans.get_finished_spans()
    root = one(finished, "search")
    assert one(finished, "search.embed").parent.span_id == root.context.span_id
    assert (
        one(finished, "vectorstore.search", **{"rag.tenant": "acme", "rag.hits": 0}).parent.span_id
        == root.context.span_id
    )
