"""Confluent wire format (00 + schema id + body) against an in-process HTTP server speaking the
registry's GET /schemas/ids/{id}: fetched once per id, resolved against the reader schema, and
the right errors (dead letter versus retry). tests/integration/test_avro_interop.py runs the same
against a real registry (Apicurio Registry's Confluent-compatible API)."""

from __future__ import annotations

import asyncio
import copy
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import fastavro
import pytest
from aiohttp import web
from fastavro.schema import parse_schema

from rag_streams.adapters import codecs
from rag_streams.adapters.codecs import CHUNK, RAW
from rag_streams.adapters.schema_registry import SchemaRegistry
from rag_streams.errors import BadInput, TransientError, retry_transient
from rag_streams.rules.records import RawDocument
from rag_streams.settings import load_settings

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "avro"
RAW_TEXT = (SCHEMA_DIR / "RawDocument.avsc").read_text()


def _older_raw_schema() -> dict[str, Any]:
    """RawDocument as a producer might have registered it: without the defaulted fields, an extra one."""
    old = copy.deepcopy(json.loads(RAW_TEXT))
    old["fields"] = [f for f in old["fields"] if "default" not in f] + [{"name": "legacy_flag", "type": "boolean"}]
    return old


SCHEMAS: dict[int, Any] = {
    1: {"schema": RAW_TEXT},
    2: {"schema": json.dumps(_older_raw_schema())},
    3: {"schema": (SCHEMA_DIR / "Chunk.avsc").read_text()},
    4: {"schema": "syntax = 'proto3';", "schemaType": "PROTOBUF"},
    5: {"schema": "{not json"},
}


class Registry:
    """GET /schemas/ids/{id} with a hit counter; ``failures`` 500s first."""

    def __init__(self) -> None:
        self.hits: list[int] = []
        self.failures = 0

    async def schema(self, request: web.Request) -> web.Response:
        schema_id = int(request.match_info["id"])
        self.hits.append(schema_id)
        await asyncio.sleep(0.05)  # slow enough that concurrent lookups overlap
        if self.failures:
            self.failures -= 1
            return web.json_response({"error_code": 50001, "message": "store down"}, status=500)
        if schema_id == 6:  # not a registry at all (say, a proxy's error page)
            return web.Response(text="<html>gateway</html>", content_type="text/html")
        if schema_id not in SCHEMAS:
            return web.json_response({"error_code": 40403, "message": "Schema not found"}, status=404)
        return web.json_response(SCHEMAS[schema_id])


@pytest.fixture
async def registry() -> AsyncIterator[tuple[Registry, str]]:
    server = Registry()
    app = web.Application()
    app.router.add_get("/schemas/ids/{id}", server.schema)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/"
    codecs.configure(load_settings({"RAG_SCHEMA_REGISTRY_URL": url}, dotenv=None))
    yield server, url
    codecs.configure(load_settings({}, dotenv=None))
    await runner.cleanup()


def confluent(schema_id: int, schema: dict[str, Any], values: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    buf.write(b"\x00" + schema_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(buf, parse_schema(schema), values)
    return buf.getvalue()


DOC = RawDocument(tenant_id="acme", doc_id="a.md", version=7, text="hello", metadata={"k": "v"})


async def _decode(data: bytes) -> RawDocument:
    schema_id = RAW.unfetched_schema_id(data)
    if schema_id is not None:
        await RAW.fetch_schema(schema_id)
    return RAW.decode(data)


async def test_current_schema_by_id_decodes_and_is_fetched_once(registry: tuple[Registry, str]) -> None:
    server, _ = registry
    data = confluent(1, json.loads(RAW_TEXT), codecs._asdict(DOC))
    assert RAW.unfetched_schema_id(data) == 1
    results = await asyncio.gather(*(_decode(data) for _ in range(20)))  # concurrent first lookups
    assert results == [DOC] * 20
    assert RAW.unfetched_schema_id(data) is None
    for _ in range(100):
        assert RAW.decode(data) == DOC
    assert server.hits == [1]


async def test_older_writer_schema_resolves_to_the_reader(registry: tuple[Registry, str]) -> None:
    data = confluent(2, _older_raw_schema(), {"tenant_id": "acme", "doc_id": "b.md", "version": 3, "legacy_flag": True})
    doc = await _decode(data)
    assert doc == RawDocument(tenant_id="acme", doc_id="b.md", version=3)  # defaults filled, extra field dropped


async def test_registry_framing_of_the_current_schema_is_checked_for_canonical_encoding(
    registry: tuple[Registry, str],
) -> None:
    data = confluent(1, json.loads(RAW_TEXT), codecs._asdict(DOC))
    op_at = 5 + len(b"\x08acme\x08a.md\x0e")  # tenant_id, doc_id, version, then the op enum index
    assert data[op_at] == 0
    with pytest.raises(BadInput, match="non-canonical"):
        await _decode(data[:op_at] + b"\x01" + data[op_at + 1 :])  # index -1: read as DELETE by fastavro


@pytest.mark.parametrize(
    ("schema_id", "match"),
    [
        (99, "not in the schema registry"),
        (4, "PROTOBUF"),
        (5, "not a valid Avro schema"),
        (3, "does not resolve to RawDocument"),
    ],
)
async def test_unknown_non_avro_or_unresolvable_ids_are_bad_input(
    registry: tuple[Registry, str], schema_id: int, match: str
) -> None:
    data = b"\x00" + schema_id.to_bytes(4, "big") + b"\x02"
    with pytest.raises(BadInput, match=match):
        await _decode(data)


async def test_a_failing_registry_is_transient_and_retried(registry: tuple[Registry, str]) -> None:
    server, _ = registry
    server.failures = 2
    data = confluent(1, json.loads(RAW_TEXT), codecs._asdict(DOC))
    with pytest.raises(TransientError):
        await RAW.fetch_schema(1)
    await retry_transient(RAW.fetch_schema, 1, what="lookup", base_delay=0.01)
    assert RAW.decode(data) == DOC
    assert server.hits == [1, 1, 1]


async def test_an_unreachable_registry_is_transient() -> None:
    registry = SchemaRegistry("http://127.0.0.1:9/", timeout_s=2)
    with pytest.raises(TransientError):
        await registry.fetch(1)


async def test_an_answer_that_is_not_a_registry_answer_is_transient(registry: tuple[Registry, str]) -> None:
    with pytest.raises(TransientError, match="not a schema"):
        await RAW.fetch_schema(6)


async def test_the_registry_is_shared_by_codecs_and_kept_when_reconfigured(registry: tuple[Registry, str]) -> None:
    server, url = registry
    await RAW.fetch_schema(1)
    codecs.configure(load_settings({"RAG_SCHEMA_REGISTRY_URL": url}, dotenv=None))
    assert CHUNK.registry is RAW.registry
    assert RAW.unfetched_schema_id(b"\x00\x00\x00\x00\x01") is None
    assert server.hits == [1]


def test_single_object_copy_reencodes_only_confluent_framing() -> None:
    standard = RAW.encode(DOC)
    assert RAW.single_object(standard, DOC) is standard
    assert RAW.single_object(b"\x00\x00\x00\x00\x01" + standard[10:], DOC) == standard
