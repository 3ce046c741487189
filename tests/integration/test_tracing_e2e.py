"""Tracing end to end: a real worker configured by the standard OTEL_* variables exports its spans
over OTLP/HTTP to a collector stub in this test; a document published by this process's producer
and one published over HTTP each arrive as one trace (publish -> chunk -> embed -> index -> store
write), and a search as its own."""

from __future__ import annotations

import gzip
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rag_streams.observability import tracing

from support.pipeline import Pipeline, free_port

pytestmark = pytest.mark.integration
TENANT = "traced"
STAGES = ("publish", "chunk", "embed", "index", "vectorstore.upsert")


class Collector:
    """An OTLP/HTTP trace receiver: the spans it was sent, flattened to dicts."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        for rs in export.resource_spans:
            service = {a.key: a.value.string_value for a in rs.resource.attributes}.get("service.name")
            for ss in rs.scope_spans:
                for s in ss.spans:
                    self.spans.append(
                        {
                            "name": s.name,
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent": s.parent_span_id.hex(),
                            "ms": (s.end_time_unix_nano - s.start_time_unix_nano) / 1e6,
                            "service": service,
                            "links": [link.span_id.hex() for link in s.links],
                            "attrs": {a.key: _value(a.value) for a in s.attributes},
                        }
                    )
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    def trace_of(self, doc_id: str) -> list[dict[str, Any]]:
        """Every span of the trace whose publish span is this document's."""
        ids = {s["trace_id"] for s in self.spans if s["name"] == "publish" and s["attrs"].get("rag.doc_id") == doc_id}
        return [s for s in self.spans if s["trace_id"] in ids]


def _value(v: Any) -> Any:
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    c = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", c.receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", c.port).start()
    yield c
    await runner.cleanup()


@pytest.fixture
def local_spans() -> Any:
    """This process traces too (its producer's publish spans), to memory."""
    exporter, provider = InMemorySpanExporter(), TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)


def chain(trace: list[dict[str, Any]], doc_id: str) -> dict[str, dict[str, Any]]:
    """The trace's span of each step, asserting each is the child of the one before."""
    by_name: dict[str, dict[str, Any]] = {}
    for name in STAGES:
        found = [s for s in trace if s["name"] == name and s["attrs"].get("rag.doc_id") == doc_id]
        assert len(found) == 1, (name, trace)
        by_name[name] = found[0]
    for parent, child in itertools.pairwise(STAGES):
        assert by_name[child]["parent"] == by_name[parent]["span_id"], (parent, child, trace)
    return by_name


def show(spans: list[dict[str, Any]]) -> str:
    names = {s["span_id"]: s["name"] for s in spans}
    keep = ("rag.tenant", "rag.doc_id", "rag.version", "rag.chunks", "rag.chunk_count", "rag.points", "rag.cached")
    return "\n".join(
        f"  {s['name']:<20} parent={names.get(s['parent'], '-' if not s['parent'] else 'other process'):<14}"
        f" {s['ms']:8.1f} ms  {s['service']}  { ({k: v for k, v in s['attrs'].items() if k in keep or k.startswith('rag.chunks_')}) }"
        for s in sorted(spans, key=lambda s: STAGES.index(s["name"]) if s["name"] in STAGES else 9)
    )


async def test_a_document_is_one_trace_across_the_worker_and_a_search_its_own(
    kafka: Any, redis_server: Any, tmp_path: Path, collector: Collector, local_spans: InMemorySpanExporter
) -> None:
    p = Pipeline(kafka, tmp_path, redis_server)
    p.env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,  # the standard variables, nothing else
            "OTEL_SERVICE_NAME": "rag-worker",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
    )
    await p.start()
    try:
        text = "Tide pools are refilled twice a day by the sea, and the crabs come out at dusk."
        async with p.producer() as producer:  # this process's producer API: its publish span is local
            await producer.upsert(TENANT, "tides.md", text, version=3)
        status, body = await p.api("PUT", f"/v1/tenants/{TENANT}/documents/guide.md", {"text": "Rotate keys yearly."})
        assert status == 202, body
        docs = {("tides.md", 3), ("guide.md", body["version"])}
        await p.wait_for(lambda: p.holds_exactly(TENANT, docs), timeout=180, what="indexing")
        assert (await p.search(TENANT, "when do crabs come out"))[0]["doc_id"] == "tides.md"
        status, again = await p.api("POST", f"/v1/tenants/{TENANT}/search", {"query": "when do crabs come out"})
        assert status == 200 and again["cached"] is True

        async def exported() -> bool:
            names = {s["name"] for s in collector.spans}
            return {"index", "vectorstore.upsert", "search"} <= names and len(collector.trace_of("guide.md")) >= 5

        await p.wait_for(exported, timeout=60, what="the worker's spans at the collector")
    finally:
        p.worker.stop()
    assert p.crashes() == []

    # published here, continued there: the worker's spans join the trace of this process's publish
    [local] = [s for s in local_spans.get_finished_spans() if s.name == "publish"]
    trace_id = format(local.context.trace_id, "032x")
    remote = [s for s in collector.spans if s["trace_id"] == trace_id]
    published = {"name": "publish", "trace_id": trace_id, "span_id": format(local.context.span_id, "016x")}
    steps = chain([{**published, "parent": "", "attrs": dict(local.attributes or {})}, *remote], "tides.md")
    assert steps["chunk"]["service"] == "rag-worker"
    chunks = steps["chunk"]["attrs"]["rag.chunks"]
    assert chunks >= 1 and steps["embed"]["attrs"]["rag.chunk_count"] == chunks
    assert steps["vectorstore.upsert"]["attrs"]["rag.points"] == chunks
    for step in steps.values():
        assert (step["attrs"]["rag.tenant"], step["attrs"]["rag.version"]) == (TENANT, 3)

    # published over HTTP: the PUT's server span is the root of the document's trace
    trace = collector.trace_of("guide.md")
    batches = {link for t in trace for link in t["links"]}  # the batch spans its stage spans link to
    batch_traces = {s["trace_id"] for s in collector.spans if s["span_id"] in batches}
    print(f"\nthe trace of guide.md, published over HTTP:\n{show(trace)}")
    print(f"its batches (traces of their own):\n{show([s for s in collector.spans if s['trace_id'] in batch_traces])}")
    steps = chain(trace, "guide.md")
    assert {s["name"] for s in collector.spans if s["span_id"] in batches} == {"embed batch", "index batch"}
    [put] = [s for s in trace if s["name"] == "documents.put"]
    assert steps["publish"]["parent"] == put["span_id"] and put["parent"] == ""

    # each search is a trace of its own: the lookup, then the model, the store and the cache
    searches = [s for s in collector.spans if s["name"] == "search"]
    assert [s["attrs"]["rag.cached"] for s in searches] == [False, True] and all(s["parent"] == "" for s in searches)
    first = [s for s in collector.spans if s["trace_id"] == searches[0]["trace_id"]]
    print(f"the trace of the first search:\n{show(first)}")
    assert {s["name"] for s in first} == {"search", "cache.get", "search.embed", "vectorstore.search", "cache.put"}
    assert {s["parent"] for s in first if s["name"] != "search"} == {searches[0]["span_id"]}
    cached = [s["name"] for s in collector.spans if s["trace_id"] == searches[1]["trace_id"]]
    assert sorted(cached) == ["cache.get", "search"]
