"""The HTTP contract (SPEC §7) on a real worker: JSON errors from aiohttp itself and no traceback
for a client's mistake; versions, doc_ids, metadata and filters refused with a 400; the raw topic
dead-letters the doc_ids the API refuses; the CLI skips them; a min_version search waits for a
tenant's first write."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from rag_streams.adapters.codecs import DEADLETTER, RAW
from rag_streams.rules.records import RawDocument

pytestmark = pytest.mark.integration
BIG = 2**63


async def raw_http(port: int, data: bytes) -> tuple[int, str, bytes]:
    """Send bytes as they are (no client normalises the path or refuses a bad header); the status,
    the content type and the body of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    with contextlib.suppress(ConnectionError):  # a 413 may be answered before the body is all sent
        await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 60)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers.get("content-type", ""), body


def request(method: str, path: str, body: Any = None, extra: bytes = b"") -> bytes:
    data = b"" if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(data)}\r\n"
    return head.encode() + extra + b"\r\n" + data


def error_of(status: int, ctype: str, body: bytes) -> dict[str, Any]:
    assert ctype.startswith("application/json"), (status, ctype, body[:300])
    parsed = orjson.loads(body)
    assert set(parsed) == {"error", "detail"}, parsed
    return dict(parsed)


async def test_http_contract_on_a_real_worker(pipeline: Any) -> None:
    port, docs = pipeline.port, "/v1/tenants/contract/documents"
    cases: list[tuple[bytes, int, str]] = [
        (request("GET", "/no/such/route"), 404, ""),
        (request("PATCH", f"{docs}/a.md", {"text": "x"}), 405, ""),
        (request("POST", "/v1/tenants/contract/search", b"{" + b" " * 2_000_000 + b"}"), 413, ""),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nthis is no header\r\n\r\n", 400, ""),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400, ""),
        (b"G\x00T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""),
        (request("PUT", f"{docs}/a.md", {"text": "x", "version": BIG}), 400, "2^63-1"),
        (request("PUT", f"{docs}/a.md", {"text": "x", "version": "00012"}), 400, "'version'"),
        (request("PUT", f"{docs}/a.md", {"text": "x", "version": 1.5}), 400, "'version'"),
        (request("PUT", f"{docs}/a.md", {"text": "x", "version": True}), 400, "'version'"),
        (request("DELETE", f"{docs}/a.md?version={BIG}"), 400, "'version'"),
        (request("DELETE", f"{docs}/a.md?version=00012"), 400, "'version'"),
        (request("PUT", f"{docs}/a.md", {"text": "x", "metadata": []}), 400, "'metadata'"),
        (request("POST", "/v1/tenants/contract/search", {"query": "q", "filter": {"tenant": "b"}}), 400, "'tenant'"),
        (request("POST", "/v1/tenants/contract/search", {"query": "q", "min_version": {"a": BIG}}), 400, "min_version"),
    ]
    for doc_id in ["../../etc/passwd", "..", ".", "a/./b", " ", "a\r\nb", "a\nb", "a\x00b", "a\x1bb", "x" * 1025]:
        encoded = quote(doc_id, safe="")
        cases.append((request("PUT", f"{docs}/{encoded}", {"text": "hello"}), 400, "doc_id"))
        cases.append((request("DELETE", f"{docs}/{encoded}"), 400, "doc_id"))
    for data, status, why in cases:
        got, ctype, body = await raw_http(port, data)
        assert got == status, (data[:120], got, body[:300])
        assert why in error_of(got, ctype, body)["detail"], (data[:120], body[:300])

    status, body = await pipeline.api("GET", "/openapi.json")
    assert status == 200 and body["openapi"].startswith("3.") and "/v1/tenants/{tenant}/search" in body["paths"]
    for faust_page in ("/router/", "/table/"):  # Faust's own pages are off: not part of the contract
        status, body = await pipeline.api("GET", faust_page)
        assert (status, body["error"]) == (404, "not_found"), body

    assert pipeline.worker.alive()
    log = pipeline.worker.log.read_text(errors="replace")
    assert "Error handling request" not in log and "Traceback" not in log, log[-3000:]


async def test_a_min_version_search_waits_for_a_tenants_first_write(pipeline: Any) -> None:
    status, _ = await pipeline.api("PUT", "/v1/tenants/warm/documents/w.md", {"text": "The model is loaded."})
    assert status == 202
    await pipeline.wait_for(lambda: _searchable(pipeline, "warm"), timeout=180, what="the warm-up document")

    status, body = await pipeline.api("POST", "/v1/tenants/fresh/search", {"query": "anything"})
    assert status == 404 and body["error"] == "not_found", body  # no collection, no min_version: 404 at once

    text = "The lighthouse keeper winds the clock every Sunday."
    status, _ = await pipeline.api("PUT", "/v1/tenants/fresh/documents/keeper.md", {"text": text, "version": 7})
    assert status == 202
    question = {"query": "who winds the clock", "k": 1, "min_version": {"keeper.md": 7}}
    status, body = await pipeline.api("POST", "/v1/tenants/fresh/search", question)
    assert status == 200 and "pending" not in body, body
    assert [(r["doc_id"], r["version"]) for r in body["results"]] == [("keeper.md", 7)], body

    question["min_version"] = {"never.md": 1}  # a first write that never comes: the wait runs out, no 404
    status, body = await pipeline.api("POST", "/v1/tenants/never/search", question)
    assert status == 200 and body["results"] == [] and body["pending"] == {"never.md": 0}, body


async def _searchable(pipeline: Any, tenant: str) -> bool:
    status, _ = await pipeline.api("POST", f"/v1/tenants/{tenant}/search", {"query": "q"})
    return status == 200 and bool(await pipeline.points(tenant))


async def test_the_raw_topic_dead_letters_the_doc_ids_the_api_refuses(pipeline: Any, tmp_path: Path) -> None:
    bad_ids = ["../../etc/passwd", "..", "a\r\nb", "a\x00b", " ", "x/./y"]
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:  # written as another producer would, past DocumentProducer's own check
        for doc_id in [*bad_ids, "fine.md"]:
            doc = RawDocument("rawids", doc_id, 1, text="Sea stars cling to the rocks.")
            await producer.send_and_wait(pipeline.topics.raw, RAW.encode(doc), key=doc.key.encode())
    finally:
        await producer.stop()

    async def dead_lettered() -> bool:
        return len(await pipeline.read_topic(pipeline.topics.deadletter)) >= len(bad_ids)

    await pipeline.wait_for(dead_lettered, timeout=180, what="the bad doc_ids dead-lettered")
    letters = [DEADLETTER.decode(r.value) for r in await pipeline.read_topic(pipeline.topics.deadletter)]
    assert sorted(RAW.decode(dl.value).doc_id for dl in letters) == sorted(bad_ids)
    assert all("doc_id" in dl.message and dl.stage == "chunk" for dl in letters), [dl.message for dl in letters]
    await pipeline.wait_for(
        lambda: pipeline.holds_exactly("rawids", {("fine.md", 1)}), timeout=180, what="the good document"
    )

    # the CLI's publish: the same rule, the file skipped with a one-line reason, the others published
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "ok.md").write_text("Kelp forests grow fast in cold water.")
    (folder / "bad\nname.md").write_text("A file name with a newline in it.")
    cli = subprocess.run(
        [sys.executable, "-m", "rag_streams.cli", "publish", "--tenant", "cliids", str(folder), "--version", "3"],
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "control character" in cli.stderr and "published 1 document(s)" in cli.stdout, cli.stdout + cli.stderr
    assert "Traceback" not in cli.stderr
    await pipeline.wait_for(lambda: pipeline.holds_exactly("cliids", {("ok.md", 3)}), timeout=180, what="ok.md")
