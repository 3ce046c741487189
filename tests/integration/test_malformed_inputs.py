"""Fuzzed raw-topic input: >1,000 malformed messages, every one dead-lettered once, good documents all indexed."""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from rag_streams.adapters.codecs import DEADLETTER, MAGIC, RAW
from rag_streams.errors import BadInput
from rag_streams.rules.records import RawDocument, parse_key, validate_raw

pytestmark = pytest.mark.integration

MAX_BYTES = 2048  # RAG_MAX_DOC_BYTES of this test's worker
PER_CLASS = 60
Msg = tuple[bytes | None, bytes | None]  # (value, key)


@pytest.fixture(autouse=True)
def _small_doc_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Autouse fixtures run first in their scope: the `pipeline` fixture copies os.environ after this.
    monkeypatch.setenv("RAG_MAX_DOC_BYTES", str(MAX_BYTES))


def zz(n: int) -> bytes:
    """An Avro long: zig-zag, then a base-128 varint."""
    u, out = (n << 1) ^ (n >> 63), bytearray()
    while u > 0x7F:
        out.append(u & 0x7F | 0x80)
        u >>= 7
    return bytes([*out, u])


def s(b: bytes) -> bytes:
    return zz(len(b)) + b


def body(
    tenant: bytes = b"acme", doc: bytes = b"d.md", version: bytes = zz(1), op: bytes = zz(0), text: bytes = s(b"hi")
) -> bytes:
    """A RawDocument body written by hand, so any field can hold bytes fastavro would never write."""
    return s(tenant) + s(doc) + version + op + text + s(b"text/plain") + s(b"") + zz(0) + zz(0)


def doc(
    r: random.Random, tenant: str = "acme", doc_id: str = "", version: int = 1, text: str = "hi"
) -> tuple[bytes, bytes]:
    d = RawDocument(tenant, doc_id or f"d{r.randrange(10**6)}.md", version, text=text)
    return RAW.encode(d), d.key.encode()


def bad_utf8(r: random.Random) -> bytes:
    return b"ok" + r.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf"]) + b"!"


def flip(r: random.Random, v: bytes) -> bytes:
    i = r.randrange(10, len(v))
    return v[:i] + bytes([v[i] ^ (1 << r.randrange(8))]) + v[i + 1 :]


def cut(r: random.Random, v: bytes) -> bytes:
    return v[: r.randrange(10, len(v))]


ws = [" ", "\n\t ", "\u3000", "\u00a0\u2003\r", ""]
bad_tenants = ["", "ACME", "a b", "a" * 65, "acmé", "acme/x", "acme\n", "../etc", "a.b", "\u0430cme"]
CLASSES: dict[str, Callable[[random.Random], Msg]] = {
    "random-bytes": lambda r: (r.randbytes(r.randint(1, 300)), r.choice([b"acme/x", None, r.randbytes(8)])),
    "empty-value": lambda r: (b"", b"acme/x"),
    "bad-key-tombstone": lambda r: (
        None,
        r.choice([b"", b"acme", b"ACME/x.md", b"acme/", b"acme/\xff.md", r.randbytes(4).replace(b"/", b"")]),
    ),
    "short-header": lambda r: (MAGIC + r.randbytes(r.randint(0, 7)), b"acme/x"),
    "wrong-magic": lambda r: (r.choice([b"\xc3\x00", b"\x00\x01", b"Obj"]) + RAW.header[2:] + body(), b"acme/d.md"),
    "wrong-fingerprint": lambda r: (MAGIC + r.randbytes(8) + body(), b"acme/d.md"),
    "truncated": lambda r: (cut(r, RAW.header + body(text=s(b"hello" * r.randint(0, 20)))), b"acme/d.md"),
    "trailing-bytes": lambda r: (RAW.header + body() + r.randbytes(r.randint(1, 20)), b"acme/d.md"),
    "bit-flip": lambda r: (flip(r, doc(r, doc_id="d.md", text="hello " * r.randint(1, 9))[0]), b"acme/d.md"),
    "bad-enum-index": lambda r: (RAW.header + body(op=zz(r.choice([-1, -2, -(2**40), 2, 3, 2**31]))), b"acme/d.md"),
    "invalid-utf8": lambda r: (RAW.header + body(**{r.choice(["tenant", "doc"]): bad_utf8(r)}), b"acme/d.md"),
    "bad-lengths": lambda r: (RAW.header + body(text=zz(r.choice([-3, -1, 2**40, 2**62, 10**6]))), b"acme/d.md"),
    "bad-tenant": lambda r: doc(r, tenant=r.choice(bad_tenants)),
    "bad-doc-id": lambda r: (lambda d: (RAW.header + body(doc=d), b"acme/" + d))(
        r.choice([b"", b"x" * r.randint(1025, 3000)])
    ),
    "negative-version": lambda r: doc(r, version=-r.choice([1, 2**20, 2**63])),
    "empty-text": lambda r: doc(r, text=r.choice(ws) * r.randint(1, 50)),
    "oversize-text": lambda r: doc(r, text=r.choice("aé日🚀") * r.randint(MAX_BYTES // 4 + 1, 3 * MAX_BYTES)),
    "key-mismatch": lambda r: (
        doc(r, doc_id="k.md")[0],
        r.choice([b"acme/x", b"ACME/k.md", b"k.md", b"acme/k.md ", b""]),
    ),
    "missing-key": lambda r: (doc(r)[0], None),
    "non-utf8-key": lambda r: (doc(r, doc_id="k.md")[0], b"acme/k.md\xff" + r.randbytes(3)),
}


def rejected(value: bytes | None, key: bytes | None) -> bool:
    """What the chunk stage does (agents/chunk_documents: register.handle): True when it raises BadInput."""
    if value is None:  # a tombstone deletes the accepted version of tenant/doc_id: its key is checked
        try:
            parse_key(key)
        except BadInput:
            return True
        return False
    try:
        d = validate_raw(RAW.decode(value), max_bytes=MAX_BYTES)
    except BadInput:
        return True
    return key != d.key.encode()


def malformed(seed: int) -> list[tuple[str, Msg]]:
    r, out = random.Random(seed), []
    for name, make in CLASSES.items():
        made = [m for m in (make(r) for _ in range(PER_CLASS * 10)) if rejected(*m)][:PER_CLASS]
        assert len(made) == PER_CLASS, f"{name}: only {len(made)} candidates are malformed"
        out += [(name, m) for m in made]
    return out


async def test_malformed_raw_messages_are_dead_lettered_once(pipeline: Any) -> None:
    assert pipeline.settings.max_doc_bytes == MAX_BYTES
    r = random.Random(20240611)
    bad = malformed(r.randrange(2**32))
    good = [doc(r, doc_id=f"good-{i}.md", text=f"Good document {i} about tide pools and sea stars.") for i in range(20)]
    stream: list[Msg] = [m for _, m in bad]
    for g in good:
        stream.insert(r.randrange(len(stream) + 1), g)

    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        sent = [await producer.send(pipeline.topics.raw, value, key=key) for value, key in stream]
        for fut in sent:
            await fut
    finally:
        await producer.stop()

    good_ids = {f"good-{i}.md" for i in range(20)}

    async def indexed() -> bool:
        return {p["doc_id"] for p in await pipeline.points("acme")} == good_ids

    async def all_dead_lettered() -> bool:
        assert pipeline.worker.alive(), pipeline.worker.log.read_text()[-3000:]
        return len(await pipeline.read_topic(pipeline.topics.deadletter)) >= len(bad)

    await pipeline.wait_for(indexed, timeout=300, what="every good document among the malformed ones")
    with contextlib.suppress(AssertionError):  # on a timeout, the comparison below names what is missing
        await pipeline.wait_for(all_dead_lettered, timeout=300, what=f"{len(bad)} dead letters")
    assert pipeline.worker.alive(), pipeline.worker.log.read_text()[-3000:]

    records = await pipeline.read_topic(pipeline.topics.deadletter)
    letters = [DEADLETTER.decode(rec.value) for rec in records]
    got = Counter((dl.value, dl.key) for dl in letters)
    want = Counter(m for _, m in bad)
    assert got == want, f"not dead-lettered: {list(want - got)[:3]}; extra or twice: {list(got - want)[:3]}"
    assert all(dl.key == rec.key and dl.topic == pipeline.topics.raw for dl, rec in zip(letters, records, strict=True))
    assert {dl.stage for dl in letters} == {"chunk"}
    assert all(dl.message and dl.error_class for dl in letters)
    assert not set(good) & set(got), "a good document was dead-lettered"
    assert len({(dl.partition, dl.offset) for dl in letters}) == len(letters)
