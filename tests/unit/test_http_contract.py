"""The HTTP contract's rules (SPEC §7), without a worker: the doc_id and version rules in their one
place and where they are used, the document and search bodies, JSON errors from aiohttp itself
(a real aiohttp server on loopback), and the OpenAPI document against the routes really registered."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp import web

from rag_streams.adapters.producer import DocumentProducer
from rag_streams.errors import BadInput
from rag_streams.http.errors import install_json_errors
from rag_streams.http.inputs import query_version, upsert_fields
from rag_streams.http.openapi import OPENAPI
from rag_streams.http.search import parse_search
from rag_streams.rules.records import DELETE, RawDocument, check_doc_id, check_version, parse_key, validate_raw
from rag_streams.settings import load_settings

BIG = 2**63

BAD_DOC_IDS = [
    pytest.param("", id="empty"),
    pytest.param("x" * 1025, id="1025-chars"),
    pytest.param(" ", id="one-space"),
    pytest.param(" \t ", id="whitespace"),
    pytest.param("a\nb", id="LF"),
    pytest.param("a\rb", id="CR"),
    pytest.param("a\x00b", id="NUL"),
    pytest.param("a\x7fb", id="DEL"),
    pytest.param("a\x85b", id="C1-NEL"),
    pytest.param("a\ud800b", id="lone-surrogate"),
    pytest.param(".", id="dot"),
    pytest.param("..", id="dotdot"),
    pytest.param("../../etc/passwd", id="traversal"),
    pytest.param("a/../b", id="inner-dotdot"),
    pytest.param("a/./b", id="inner-dot"),
    pytest.param("a/..", id="trailing-dotdot"),
    pytest.param("..\\windows", id="backslash-dotdot"),
]
GOOD_DOC_IDS = ["a.md", "x" * 1024, "docs/guide.md", "..a", "a..", "...", ".hidden", "a b", "é/ü.txt", "a/b/"]


@pytest.mark.parametrize("doc_id", BAD_DOC_IDS)
def test_the_doc_id_rule_refuses(doc_id: str) -> None:
    with pytest.raises(BadInput):
        check_doc_id(doc_id)
    with pytest.raises(BadInput):  # the raw topic's check (chunk stage: dead-lettered) is the same rule
        validate_raw(RawDocument("acme", doc_id, 1, text="hello"), max_bytes=100)
    key = f"acme/{doc_id}".encode("utf-8", "surrogatepass")
    with pytest.raises(BadInput):  # ... and so is a tombstone's key
        parse_key(key)


@pytest.mark.parametrize("doc_id", GOOD_DOC_IDS)
def test_the_doc_id_rule_accepts(doc_id: str) -> None:
    assert check_doc_id(doc_id) == doc_id
    assert validate_raw(RawDocument("acme", doc_id, 1, op=DELETE), max_bytes=0).doc_id == doc_id


@pytest.mark.parametrize("version", [-1, BIG, 2**64, True, False, "12", "00012", 1.0, None, [1]])
def test_versions_are_integers_in_the_avro_long_range(version: Any) -> None:
    with pytest.raises(BadInput):
        check_version(version)
    if isinstance(version, int):  # before: 2^63 passed and the Avro long encoder raised OverflowError
        with pytest.raises(BadInput):
            validate_raw(RawDocument("acme", "a.md", version, text="hi"), max_bytes=100)


def test_the_version_bounds_are_accepted() -> None:
    assert check_version(0) == 0 and check_version(BIG - 1) == BIG - 1


@pytest.mark.parametrize(
    ("call", "doc_id", "version"),
    [
        ("upsert", "../../etc/passwd", None),
        ("upsert", "a\r\nb", None),
        ("upsert", "a.md", BIG),
        ("delete", " ", None),
        ("delete", "a.md", -1),
    ],
)
async def test_the_python_producer_refuses_before_sending(call: str, doc_id: str, version: int | None) -> None:
    """Never started: a refusal happens before anything could reach Kafka."""
    producer = DocumentProducer(load_settings({}, dotenv=None))
    with pytest.raises(BadInput):
        if call == "upsert":
            await producer.upsert("acme", doc_id, "some text", version)
        else:
            await producer.delete("acme", doc_id, version)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"text": "x", "metadata": []}, "'metadata' must be an object of strings"),
        ({"text": "x", "metadata": "a"}, "'metadata' must be an object of strings"),
        ({"text": "x", "metadata": {"n": 1}}, "'metadata' must be an object of strings"),
        ({"text": "x", "version": "00012"}, "'version' must be an integer from 0 to 2^63-1"),
        ({"text": "x", "version": "12"}, "'version' must be an integer"),
        ({"text": "x", "version": 12.0}, "'version' must be an integer"),
        ({"text": "x", "version": True}, "'version' must be an integer"),
        ({"text": "x", "version": BIG}, "'version' must be an integer"),
        ({"text": "x", "version": -1}, "'version' must be an integer"),
        ({"text": 1}, "'text' must be a string"),
        ([], "body must be a JSON object"),
    ],
)
def test_document_bodies_refused(body: Any, why: str) -> None:
    with pytest.raises(BadInput, match=re.escape(why)):
        upsert_fields(body)


def test_document_bodies_accepted() -> None:
    assert upsert_fields({"text": "x"}) == ("x", None, {})
    assert upsert_fields({"text": "x", "version": None, "metadata": None}) == ("x", None, {})
    assert upsert_fields({"text": "x", "version": BIG - 1, "metadata": {"k": "v"}}) == ("x", BIG - 1, {"k": "v"})


@pytest.mark.parametrize("value", ["", "00012", "-1", "+1", "1.0", " 1", "²", "٣", str(BIG), "1" * 30, "0x10"])
def test_delete_query_versions_refused(value: str) -> None:
    with pytest.raises(BadInput):
        query_version(value)


def test_delete_query_versions_accepted() -> None:
    assert (query_version(None), query_version("0"), query_version(str(BIG - 1))) == (None, 0, BIG - 1)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"query": "q", "filter": {"doc": "a.md"}}, "unknown filter key 'doc'"),
        ({"query": "q", "filter": {"doc_id": "a.md", "tenant_id": "b"}}, "unknown filter key 'tenant_id'"),
        ({"query": "q", "filter": []}, "'filter' must be an object"),
        ({"query": "q", "filter": {"doc_id": []}}, "must not be an empty list"),
        ({"query": "q", "filter": {"doc_id": "../x"}}, "'filter.doc_id'"),
        ({"query": "q", "min_version": {"a.md": BIG}}, "min_version.a.md"),
        ({"query": "q", "min_version": {"a.md": "3"}}, "min_version.a.md"),
        ({"query": "q", "min_version": {"a\nb": 3}}, "'min_version'"),
    ],
)
def test_search_bodies_refused(body: Any, why: str) -> None:
    with pytest.raises(BadInput, match=re.escape(why)):
        parse_search(body)


def test_search_filters_accepted() -> None:
    assert parse_search({"query": "q", "filter": None}).doc_ids == ()
    assert parse_search({"query": "q", "filter": {"doc_id": ["a", "b"]}}).doc_ids == ("a", "b")
    assert parse_search({"query": "q", "min_version": {"a": BIG - 1}}).min_version == {"a": BIG - 1}


# --------------------------------------------------------------------------- aiohttp's own errors
async def _serve(caplog: pytest.LogCaptureFixture) -> Any:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug of ours")

    async def faust_style(request: web.Request) -> web.Response:  # what faust's View.error answers
        return web.json_response({"error": "Method GET not allowed."}, status=405)

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    faust_web = SimpleNamespace(web_app=web.Application(client_max_size=1000), _runner=None)
    faust_web.web_app.router.add_get("/boom", boom)
    faust_web.web_app.router.add_get("/faust", faust_style)
    faust_web.web_app.router.add_post("/echo", echo)
    install_json_errors(faust_web)
    runner = faust_web._runner
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    caplog.set_level(logging.DEBUG)
    return runner, port


async def _raw(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 30)  # the server closes the connection (Connection: close)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _json_error(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    assert headers["content-type"].startswith("application/json"), (headers, body)
    parsed = orjson.loads(body)
    assert set(parsed) == {"error", "detail"} and all(isinstance(v, str) and v for v in parsed.values()), parsed
    return dict(parsed)


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "not_found"),
        (b"DELETE /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, "method_not_allowed"),
        (b"GET /faust HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, "method_not_allowed"),
        (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000,
            413,
            "request_entity_too_large",
        ),
        (b"GE\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),  # malformed request line
        (b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400, "bad_request"),  # malformed header
        (b"GET / HTTP/9.Z\r\nHost: x\r\n\r\n", 400, "bad_request"),
        (b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 500, "internal_server_error"),
    ],
)
async def test_every_error_is_a_json_error_body(
    caplog: pytest.LogCaptureFixture, request_bytes: bytes, status: int, code: str
) -> None:
    runner, port = await _serve(caplog)
    try:
        got, headers, body = await _raw(port, request_bytes)
    finally:
        await runner.cleanup()
    assert got == status, body
    assert _json_error(headers, body)["error"] == code
    if request_bytes.startswith(b"DELETE"):
        assert headers["allow"] == "POST"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    if status < 500:  # a client's mistake: nothing at ERROR, no traceback ("Error handling request")
        assert errors == [] and not any(r.exc_info for r in caplog.records), [r.getMessage() for r in errors]
    else:  # a fault of ours: logged with its traceback
        assert len(errors) == 1 and errors[0].exc_info is not None


async def test_without_the_json_handler_aiohttp_answers_malformed_http_in_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What the JSON handler replaces (a guard: if aiohttp changed, the test above would prove less)."""
    caplog.set_level(logging.DEBUG)
    runner = web.AppRunner(web.Application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        status, headers, _ = await _raw(runner.addresses[0][1], b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n")
    finally:
        await runner.cleanup()
    assert status == 400 and headers["content-type"].startswith("text/plain")
    assert any(r.levelno == logging.ERROR and "Error handling request" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- OpenAPI
_ROUTES = """
import json
from rag_streams.pipeline.app import create_app
from rag_streams.settings import load_settings
app = create_app(load_settings()).app
app.web.init_server()
print(json.dumps(sorted({(r.method, r.resource.canonical) for r in app.web.web_app.router.routes()})))
"""


def test_the_openapi_document_describes_exactly_the_registered_routes(tmp_path: Any) -> None:
    """The routes of a worker that runs every role (a subprocess: the Faust app stays out of this one)."""
    env = {"RAG_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", _ROUTES], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    routes = {(method, path) for method, path in json.loads(out.stdout.strip().splitlines()[-1]) if method != "HEAD"}
    documented = {
        (method.upper(), path)
        for path, item in OPENAPI["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }
    assert documented == routes
    assert OPENAPI["openapi"].startswith("3.")
    for path, item in OPENAPI["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            assert {"400", "404", "405", "413"} <= set(op["responses"]), (method, path)
