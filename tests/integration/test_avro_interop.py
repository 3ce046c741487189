"""The wire format, from outside the project: Apache Avro's own Java library and a real Schema Registry.

* Java's ``BinaryMessageEncoder`` (single-object encoding, org.apache.avro:avro from Maven Central,
  built from ``interop/java``) writes RawDocuments that the worker decodes and indexes, and Java's
  ``BinaryMessageDecoder`` reads what the project's codecs write, for every schema.
* Confluent wire format (``00`` + schema id) with the writer schemas registered in Apicurio Registry
  (its Confluent-compatible API, ``/apis/ccompat/v7``), fetched by the worker once per id.

``interop/prepare.sh`` builds the Java helper and fetches Apicurio (cached in ~/.m2 and
~/.cache/rag-streams), once per test session.
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import fastavro
import pytest
from aiokafka import AIOKafkaProducer
from fastavro.schema import parse_schema

from rag_streams.adapters.codecs import CHUNK, DEADLETTER, EMBEDDING, RAW, AvroCodec, _asdict
from rag_streams.rules.records import DELETE, Chunk, DeadLetter, EmbeddingUpsert, RawDocument

from support.pipeline import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas" / "avro"
JAVA = ROOT / "interop" / "java"
JAVA_OPTS = ["java", "-Xmx384m", "-Dquarkus.http.host=127.0.0.1"]  # Apicurio: in-memory storage, loopback only


@pytest.fixture(scope="session")
def apicurio_runner() -> Path:
    """Builds interop/java and fetches Apicurio Registry (both cached); the registry's runner jar."""
    out = subprocess.run(
        ["bash", str(ROOT / "interop" / "prepare.sh")], check=True, capture_output=True, text=True, timeout=900
    )
    return Path(out.stdout.strip().splitlines()[-1])


def java(command: str, schema: str, lines: list[str]) -> list[str]:
    """Run the Java helper (Apache Avro's BinaryMessageEncoder/Decoder) over ``lines``."""
    classpath = f"{JAVA / 'target' / 'avro-interop-1.jar'}:{JAVA / 'target' / 'lib' / '*'}"
    out = subprocess.run(
        ["java", "-cp", classpath, "ragstreams.interop.AvroInterop", command, str(SCHEMAS / f"{schema}.avsc")],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.split("\n")[:-1]  # not splitlines(): Java leaves U+0085 etc. unescaped in JSON


def avro_json(codec: AvroCodec[Any], records: list[Any]) -> list[str]:
    """Records in Avro's JSON encoding (what Java's JsonDecoder reads and JsonEncoder writes)."""
    buf = io.StringIO()
    fastavro.json_writer(buf, codec.schema, [_asdict(r) for r in records])
    return buf.getvalue().split("\n")


SAMPLES: dict[str, tuple[AvroCodec[Any], list[Any]]] = {
    "RawDocument": (
        RAW,
        [
            RawDocument(
                "acme", "guides/naïve café.md", 1_700_000_000_123_456, text="Grüße 🚀\nline", metadata={"k": "v"}
            ),
            RawDocument("t", "d", 0, op=DELETE, produced_at=-1),
        ],
    ),
    "Chunk": (CHUNK, [Chunk("acme", "a.md", 3, "id-1", 2, 5, "ωμέγα", "ab" * 32, metadata={}, produced_at=9)]),
    "EmbeddingUpsert": (
        EMBEDDING,
        [
            EmbeddingUpsert(
                "acme", "a.md", 3, "id", 0, 1, "x", "cd" * 32, bytes(range(256)), "m", 64, metadata={"a": "b"}
            )
        ],
    ),
    "DeadLetter": (
        DEADLETTER,
        [
            DeadLetter("rag.documents.raw", 3, 2**40, None, b"\x00\xff garbage", "BadInput", "empty ✗", "chunk", 1),
            DeadLetter("t", 0, 0, b"acme/a.md", None, "E", "m", "s", 0),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_java_and_the_project_write_the_same_bytes_and_read_each_other(apicurio_runner: Path, name: str) -> None:
    codec, records = SAMPLES[name]
    [java_fingerprint] = java("fingerprint", name, [])
    assert codec.standard_header == b"\xc3\x01" + int(java_fingerprint).to_bytes(8, "little", signed=True)

    from_java = [bytes.fromhex(h) for h in java("encode", name, avro_json(codec, records))]
    assert from_java == [codec.encode(r) for r in records]  # byte for byte (at most one map entry each)
    assert [codec.decode(b) for b in from_java] == records

    decoded = java("decode", name, [codec.encode(r).hex() for r in records])
    assert [json.loads(line) for line in decoded] == [json.loads(line) for line in avro_json(codec, records)]

    # The framing rag-streams wrote before (fingerprint bytes reversed) is what Java could not read.
    legacy = java("decode", name, [(codec.legacy_header + codec.encode(r)[10:]).hex() for r in records])
    assert all(line.startswith("ERROR MissingSchemaException") for line in legacy), legacy


def _corpus() -> dict[str, str]:
    folder = resources.files("rag_streams") / "sample_corpus"
    return {p.name: p.read_text() for p in folder.iterdir() if p.name.endswith(".md")}


async def _publish(pipeline: Any, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(pipeline.topics.raw, value, key=key)
    finally:
        await producer.stop()


async def _indexed(pipeline: Any, tenant: str, docs: dict[str, RawDocument]) -> list[dict[str, Any]]:
    want = {(d.doc_id, d.version) for d in docs.values()}

    async def done() -> bool:
        return await pipeline.holds_exactly(tenant, want)

    await pipeline.wait_for(done, timeout=300, what=f"{tenant}'s documents to be indexed")
    points = await pipeline.points(tenant)
    assert {p["doc_id"]: p["metadata"] for p in points} == {d.doc_id: d.metadata for d in docs.values()}
    return points


async def test_worker_indexes_documents_encoded_by_apache_avro_java(apicurio_runner: Path, pipeline: Any) -> None:
    corpus = _corpus()
    docs = {
        name: RawDocument("java", name, 1_000 + i, text=corpus[name], source="java", metadata={"lang": "en", "ü": "ß"})
        for i, name in enumerate(["tide-pools.md", "volcanoes.md", "chess-openings.md"])
    }
    gone = [RawDocument("java", "gone.md", 5, text="short lived"), RawDocument("java", "gone.md", 6, op=DELETE)]
    java_values = [bytes.fromhex(h) for h in java("encode", "RawDocument", avro_json(RAW, [*docs.values(), *gone]))]
    assert all(v[:10] == RAW.standard_header for v in java_values)
    # A backlog message in the order rag-streams wrote before the fix is still read (rolling upgrade).
    backlog = RawDocument("java", "backlog.md", 7, text=corpus["honeybee-colonies.md"], metadata={"from": "old"})
    legacy_value = RAW.legacy_header + RAW.encode(backlog)[10:]
    await _publish(pipeline, [(d.key.encode(), v) for d, v in zip([*docs.values(), *gone], java_values, strict=True)])
    await _publish(pipeline, [(backlog.key.encode(), legacy_value)])

    await _indexed(pipeline, "java", {**docs, "backlog.md": backlog})
    hits = await pipeline.search("java", "How does a sea star open a mussel?")
    assert hits[0]["doc_id"] == "tide-pools.md"
    assert await pipeline.read_topic(pipeline.topics.deadletter) == []
    latest = {RAW.decode(r.value).doc_id: r.value for r in await pipeline.read_topic(pipeline.topics.latest) if r.value}
    assert latest["tide-pools.md"] == java_values[0]  # the accepted bytes are kept as written


# ------------------------------------------------------------------ Confluent framing, real registry
@pytest.fixture(scope="session")
def schema_registry(apicurio_runner: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Apicurio Registry (in-memory) on a free port; its Confluent-compatible API's base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("apicurio") / "apicurio.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*JAVA_OPTS, f"-Dquarkus.http.port={port}", "-jar", str(apicurio_runner)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/apis/ccompat/v7"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"Apicurio Registry exited:\n{log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{url}/schemas/types", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"Apicurio Registry did not start:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _register(url: str, subject: str, schema: dict[str, Any]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/subjects/{subject}/versions",
            json={"schema": json.dumps(schema)},
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        ) as resp,
    ):
        body = await resp.json(content_type=None)
        assert resp.status == 200, body
        return int(body["id"])


def _confluent(schema_id: int, schema: dict[str, Any], values: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    buf.write(b"\x00" + schema_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(buf, parse_schema(schema), values)
    return buf.getvalue()


async def test_worker_reads_confluent_framing_with_schemas_from_a_real_registry(
    schema_registry: str, idle_pipeline: Any
) -> None:
    pipeline = idle_pipeline
    current = json.loads((SCHEMAS / "RawDocument.avsc").read_text())
    evolved = copy.deepcopy(current)  # a producer's newer schema: a field this project does not know
    evolved["fields"].append({"name": "priority", "type": "int", "default": 0})
    subject = f"{pipeline.topics.raw}-value"
    current_id = await _register(schema_registry, subject, current)
    evolved_id = await _register(schema_registry, subject, evolved)
    assert current_id != evolved_id
    pipeline.env["RAG_SCHEMA_REGISTRY_URL"] = schema_registry  # the worker's environment
    await pipeline.restart()  # starts the worker, waits for its API
    try:
        corpus = _corpus()
        names = ["volcanoes.md", "sourdough-baking.md", "kafka-transactions.md", "tide-pools.md"]
        docs = {n: RawDocument("conf", n, 10 + i, text=corpus[n], metadata={"i": str(i)}) for i, n in enumerate(names)}
        messages = [(d.key.encode(), _confluent(current_id, current, _asdict(d))) for d in list(docs.values())[:2]] + [
            (d.key.encode(), _confluent(evolved_id, evolved, {**_asdict(d), "priority": 3}))
            for d in list(docs.values())[2:]
        ]
        unknown = (b"conf/unknown.md", b"\x00" + (987654).to_bytes(4, "big") + messages[0][1][5:])
        await _publish(pipeline, [*messages, unknown])

        await _indexed(pipeline, "conf", docs)

        async def dead_lettered() -> bool:
            return len(await pipeline.read_topic(pipeline.topics.deadletter)) >= 1

        await pipeline.wait_for(dead_lettered, timeout=60, what="the unknown schema id to be dead-lettered")
        [letter] = [DEADLETTER.decode(r.value) for r in await pipeline.read_topic(pipeline.topics.deadletter)]
        assert letter.value == unknown[1] and "not in the schema registry" in letter.message
        # The compacted topic holds single-object copies: readable without the registry (reindex, verify).
        latest = [r.value for r in await pipeline.read_topic(pipeline.topics.latest) if r.value]
        assert {RAW.decode(v).doc_id for v in latest} == set(docs) and all(v[:2] == b"\xc3\x01" for v in latest)
        # Each id was fetched once, not per message.
        log = pipeline.worker.log.read_text(errors="replace")
        for schema_id in (current_id, evolved_id):
            assert log.count(f"fetched schema id {schema_id} ") == 1, log[-3000:]
    finally:
        pipeline.worker.stop()
