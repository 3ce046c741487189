"""The work behind the CLI commands (argument parsing stays in cli.py)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from tqdm import tqdm

from rag_streams.adapters.kafka_admin import create_topics
from rag_streams.adapters.kafka_local import LocalKafka
from rag_streams.adapters.producer import DocumentProducer
from rag_streams.commands.pacing import Pacer
from rag_streams.errors import BadInput, CliError
from rag_streams.rules.records import TENANT_RE
from rag_streams.settings import Settings


def local_kafka(settings: Settings) -> LocalKafka:
    first = settings.kafka_bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if host not in ("localhost", "127.0.0.1"):
        raise CliError(f"RAG_KAFKA_BOOTSTRAP is {first}: the local broker only runs on loopback")
    return LocalKafka(settings.kafka_home, settings.kafka_version, "127.0.0.1", int(port))


def kafka(settings: Settings, action: str) -> int:
    broker = local_kafka(settings)
    if action == "up":
        broker.start()
        print(f"kafka {broker.version} up on {broker.bootstrap} (pid {broker.pid()}, data {broker.node_dir})")
    elif action == "down":
        print("kafka stopped" if broker.stop() else "kafka was not running")
    else:
        pid = broker.pid()
        print(f"kafka running on {broker.bootstrap} (pid {pid})" if pid else f"kafka not running on {broker.bootstrap}")
        return 0 if pid else 1
    return 0


def topics_create(settings: Settings) -> int:
    for name, state in asyncio.run(create_topics(settings)):
        print(f"{name:<40} {state}")
    return 0


def collect_files(paths: list[Path]) -> list[tuple[str, Path]]:
    """(doc_id, path) for files and folders: doc_id is the path relative to the folder given."""
    out: list[tuple[str, Path]] = []
    for root in paths:
        if root.is_file():
            out.append((root.name, root))
        elif root.is_dir():
            out += [
                (p.relative_to(root).as_posix(), p)
                for p in sorted(root.rglob("*"))
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
            ]
        else:
            raise CliError(f"no such file or folder: {root}")
    return out


async def publish(
    settings: Settings,
    tenant: str,
    paths: list[Path],
    version: int | None,
    pacer: Pacer | None = None,
    *,
    bulk: bool = False,
) -> int:
    files = collect_files(paths)
    failures = 0
    async with DocumentProducer(settings) as producer:
        for doc_id, path in tqdm(files, desc=f"publish {tenant}", unit="doc", file=sys.stderr):
            if pacer is not None:  # sleeps between sends: the next file goes when allowed, none skipped
                await pacer.acquire()
            try:
                text = path.read_bytes().decode("utf-8")
                await producer.upsert(
                    tenant, doc_id, text, version, source=str(path), metadata={"path": doc_id}, bulk=bulk
                )
            except (UnicodeDecodeError, ValueError, BadInput) as exc:  # BadInput: the doc_id rule, a size
                failures += 1
                tqdm.write(f"rag-streams: skipped {path}: {exc}", file=sys.stderr)
    print(f"published {len(files) - failures} document(s) for tenant {tenant}")
    return 1 if failures else 0


async def delete(settings: Settings, tenant: str, doc_id: str, version: int | None) -> int:
    async with DocumentProducer(settings) as producer:
        v = await producer.delete(tenant, doc_id, version)
    print(f"published DELETE {tenant}/{doc_id} v{v}")
    return 0


async def api_call(
    settings: Settings, method: str, path: str, body: Any = None, api_key: str | None = None, timeout: float = 30.0
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.request(
            method,
            settings.query_api_url + path,
            data=None if body is None else orjson.dumps(body),
            headers={"Content-Type": "application/json", **headers},
        ) as resp,
    ):
        raw = await resp.read()
        try:
            return resp.status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return resp.status, {"detail": raw.decode(errors="replace")[:200]}


async def search(settings: Settings, tenant: str, question: str, k: int, as_json: bool, api_key: str | None) -> int:
    try:
        status, body = await api_call(
            settings, "POST", f"/v1/tenants/{tenant}/search", {"query": question, "k": k}, api_key
        )
    except aiohttp.ClientConnectionError as exc:
        raise CliError(f"cannot reach the query API at {settings.query_api_url} (is a worker running?): {exc}") from exc
    if status != 200:
        raise CliError(f"search failed ({status}): {body.get('detail', body)}")
    if as_json:
        print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return 0
    for rank, r in enumerate(body["results"], 1):
        snippet = " ".join(str(r["text"]).split())[:160]
        print(f"{rank}. {r['score']:.3f}  {r['doc_id']} #{r['chunk_index']} (v{r['version']})\n   {snippet}")
    if not body["results"]:
        print("no results")
    return 0


async def _tenant_points(settings: Settings, tenant: str, api_key: str | None) -> list[dict[str, Any]]:
    """Every point of the tenant: from Qdrant itself, else through the index worker that holds the
    embedded store, else from the embedded store on disk when no worker has it open."""
    from rag_streams.adapters.store.open import open_store

    if settings.qdrant_url is None:
        try:
            status, body = await api_call(settings, "GET", f"/v1/tenants/{tenant}/points", api_key=api_key)
        except aiohttp.ClientConnectionError:
            pass  # no worker running: the embedded store is free to open
        else:
            if status != 200:
                raise CliError(f"reading the points failed ({status}): {body.get('detail', body)}")
            return list(body["points"])
    store = open_store(settings)
    try:
        hits = await store.points(tenant) if await store.has_tenant(tenant) else []
    finally:
        await store.close()
    return [{"id": h.id, **h.payload} for h in hits]


async def verify(settings: Settings, tenant: str, repair: bool, api_key: str | None) -> int:
    """Audit a tenant's collection against ``rag.documents.latest``; ``repair`` replays what drifted."""
    from rag_streams.adapters.codecs import RAW
    from rag_streams.adapters.kafka_admin import read_latest
    from rag_streams.adapters.services import Services
    from rag_streams.pipeline.topics import TopicNames
    from rag_streams.rules.chunking import chunk_document
    from rag_streams.rules.records import DELETE, REPAIR_HEADERS, RawDocument, doc_key
    from rag_streams.rules.verify import compare, expected_points

    if not TENANT_RE.fullmatch(tenant):
        raise CliError(f"--tenant: {tenant!r} does not match {TENANT_RE.pattern}")
    latest = await read_latest(
        settings, TopicNames.for_prefix(settings.topic_prefix).latest, key_prefix=f"{tenant}/".encode()
    )
    docs = {doc.doc_id: doc for doc in (RAW.decode(v) for v in latest.values() if v is not None)}
    tokenizer = await Services(settings).embedder()

    def chunker(doc: RawDocument) -> list[Any]:
        return chunk_document(doc, tokenizer, size=settings.chunk_tokens, overlap=settings.chunk_overlap)

    expected = await asyncio.to_thread(expected_points, docs.values(), chunker)
    drift = compare(expected, await _tenant_points(settings, tenant, api_key))
    print(drift.report(tenant))
    if repair and not drift.ok:
        republish, deletes = sorted(drift.to_republish()), drift.to_delete()
        async with DocumentProducer(settings) as producer:
            for doc_id in republish:
                key = doc_key(tenant, doc_id).encode()
                await producer.send_raw(key, latest[key], headers=REPAIR_HEADERS)
            for doc_id, version in sorted(deletes.items()):
                await producer.send(RawDocument(tenant, doc_id, version, op=DELETE), headers=REPAIR_HEADERS)
        print(f"repair: replayed {len(republish)} document(s), deleted {len(deletes)}; run verify again to confirm")
    return 0 if drift.ok else 1


def _fmt_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1f}/s"


def _fmt_seconds(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds:.0f}s"


async def lag(settings: Settings, interval_s: float, drain_target_s: float, as_json: bool) -> int:
    """`rag-streams lag`: the pipeline group's lag per partition and stage, time to drain, replicas advised."""
    from rag_streams.observability.lag import read_lag

    if interval_s < 0 or drain_target_s <= 0:
        raise CliError("--interval must be >= 0 and --drain-target > 0")
    report = await read_lag(settings, interval_s=interval_s, drain_target_s=drain_target_s)
    missing = [s.topic for s in report.stages if s.partitions == 0]
    if missing:
        raise CliError(f"topic(s) not found: {', '.join(missing)} (run `rag-streams topics create`)")
    if as_json:
        print(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"group {report.group}  (rates over {report.interval_s:.1f}s, drain target {report.drain_target_s:.0f}s)")
    print(f"{'topic':<36} {'partition':>9} {'committed':>10} {'end':>10} {'lag':>8}")
    for p in report.partitions:
        committed = "-" if p.committed is None else str(p.committed)
        print(f"{p.topic:<36} {p.partition:>9} {committed:>10} {p.end:>10} {p.lag:>8}")
    print(
        f"\n{'stage':<6} {'lag':>8} {'consumers':>9} {'throughput':>11} {'incoming':>10} {'drain':>9} {'replicas':>8}"
    )
    for s in report.stages:
        advised = "unknown" if s.advised_replicas is None else f"{s.advised_replicas}/{s.partitions}"
        print(
            f"{s.stage:<6} {s.lag:>8} {s.consumers:>9} {_fmt_rate(s.throughput):>11} {_fmt_rate(s.incoming):>10}"
            f" {_fmt_seconds(s.drain_seconds):>9} {advised:>8}"
        )
    print(f"\ntotal lag {report.total_lag}, time to drain {_fmt_seconds(report.drain_seconds)}")
    return 0
