"""Avro wire format: single-object encoding, strict decoding, schemas that match the records and evolve."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from rag_streams.adapters import codecs
from rag_streams.adapters.codecs import CHUNK, DEADLETTER, EMBEDDING, MAGIC, RAW, AvroCodec, load_schema
from rag_streams.errors import BadInput
from rag_streams.rules.records import DELETE, Chunk, DeadLetter, EmbeddingUpsert, RawDocument
from rag_streams.settings import SettingsError, load_settings

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "rag-streams-hypothesis")

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "avro"
SCHEMA_FILES = sorted(SCHEMA_DIR.rglob("*.avsc"))

RAW_DOC = RawDocument(
    tenant_id="acme",
    doc_id="guides/naïve café.md",
    version=1_700_000_000_123_456,
    op="UPSERT",
    text="Grüße 日本語 🚀 — line\nbreak",
    content_type="text/markdown",
    source="s3://bucket/x",
    metadata={"lang": "de", "ключ": "значение"},
    produced_at=1_700_000_000_123,
)
CHUNK_REC = Chunk(
    tenant_id="acme",
    doc_id="a.md",
    version=3,
    chunk_id="6a7c1f7e-0000-5000-8000-000000000000",
    chunk_index=2,
    chunk_count=5,
    text="ωμέγα",
    content_hash="ab" * 32,
    metadata={},
    produced_at=9,
)
EMBED_REC = EmbeddingUpsert(
    tenant_id="acme",
    doc_id="a.md",
    version=3,
    chunk_id="id",
    chunk_index=0,
    chunk_count=1,
    text="x",
    content_hash="cd" * 32,
    vector=bytes(range(16)),
    model="m",
    dim=4,
    op=DELETE,
    metadata={"k": "v"},
    produced_at=0,
)
DEAD_REC = DeadLetter(
    topic="rag.documents.raw",
    partition=3,
    offset=2**40,
    key=None,
    value=b"\x00\xff garbage",
    error_class="BadInput",
    message="text is empty ✗",
    stage="chunk",
    time=1_700_000_000_000,
)

CASES: list[tuple[AvroCodec[Any], Any, str]] = [
    (RAW, RAW_DOC, "RawDocument"),
    (RAW, RawDocument(tenant_id="t", doc_id="d", version=0, op=DELETE), "RawDocument"),
    (CHUNK, CHUNK_REC, "Chunk"),
    (EMBEDDING, EMBED_REC, "EmbeddingUpsert"),
    (DEADLETTER, DEAD_REC, "DeadLetter"),
    (DEADLETTER, dataclasses.replace(DEAD_REC, key=b"acme/a.md", value=None), "DeadLetter"),
]
CODECS = {
    "RawDocument": (RAW, RawDocument),
    "Chunk": (CHUNK, Chunk),
    "EmbeddingUpsert": (EMBEDDING, EmbeddingUpsert),
    "DeadLetter": (DEADLETTER, DeadLetter),
}


@pytest.mark.parametrize(("codec", "record", "name"), CASES, ids=[c[2] for c in CASES])
def test_round_trip(codec: AvroCodec[Any], record: Any, name: str) -> None:
    assert codec.decode(codec.encode(record)) == record


# What Apache Avro 1.12.2 (Java) gives for each schema file: SchemaNormalization.parsingFingerprint64
# (a signed long) and the first 10 bytes BinaryMessageEncoder writes, recorded with interop/java
# (tests/integration/test_avro_interop.py checks them against Java on every run).
JAVA_FINGERPRINTS = {
    "RawDocument": (7155103856946143853, "c3016d624d6c0c094c63"),
    "Chunk": (-8870922122333909283, "c301dd0e22745427e484"),
    "EmbeddingUpsert": (7596302796319621051, "c301bbffef74257d6b69"),
    "DeadLetter": (7138785401367525541, "c301a57841e87f0f1263"),
}
# BinaryMessageEncoder's bytes for {"tenant_id": "acme", "doc_id": "d", "version": 5, "text": "hi", ...defaults}
JAVA_RAW_MESSAGE = bytes.fromhex("c3016d624d6c0c094c630861636d6502640a0004686914746578742f706c61696e000000")


@pytest.mark.parametrize("name", sorted(CODECS))
def test_header_is_magic_and_the_little_endian_schema_fingerprint(name: str) -> None:
    codec, _ = CODECS[name]
    java_long, java_header = JAVA_FINGERPRINTS[name]
    raw_schema = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())
    canonical = to_parsing_canonical_form(parse_schema(raw_schema))
    assert fingerprint(canonical, "CRC-64-AVRO") == java_header[4:]  # fastavro's hex: the bytes in wire order
    record = next(r for c, r, n in CASES if n == name)
    data = codec.encode(record)
    assert data[:2] == b"\xc3\x01"
    assert len(codec.header) == 10
    assert data[:10] == codec.header == bytes.fromhex(java_header)
    assert int.from_bytes(data[2:10], "little", signed=True) == java_long


def test_encodes_byte_for_byte_what_java_writes_and_reads_it() -> None:
    record = RawDocument(tenant_id="acme", doc_id="d", version=5, text="hi")
    assert RAW.encode(record) == JAVA_RAW_MESSAGE
    assert RAW.decode(JAVA_RAW_MESSAGE) == record


@pytest.mark.parametrize(("codec", "record", "name"), CASES, ids=[c[2] for c in CASES])
def test_reads_the_legacy_reversed_fingerprint(codec: AvroCodec[Any], record: Any, name: str) -> None:
    standard = codec.encode(record)
    legacy = MAGIC + standard[2:10][::-1] + standard[10:]
    assert legacy[:10] == codec.legacy_header != codec.standard_header
    assert codec.decode(legacy) == record


def test_no_fingerprint_is_ambiguous_in_either_byte_order() -> None:
    values = [fp for codec in codecs.ALL for fp, _ in codec.known_fingerprints()]
    assert len(values) == len(set(values)) == 2 * len(codecs.ALL)  # no palindromes, no collisions
    codecs.check_unambiguous()


def test_check_unambiguous_refuses_a_reversed_fingerprint_naming_another_schema() -> None:
    class Clash:
        def __init__(self, pairs: list[tuple[bytes, str]]) -> None:
            self.pairs = pairs

        def known_fingerprints(self) -> list[tuple[bytes, str]]:
            return self.pairs

    a, b = Clash([(bytes(range(8)), "A")]), Clash([(bytes(range(8)), "B")])
    with pytest.raises(RuntimeError, match="ambiguous"):
        codecs.check_unambiguous((a, b))  # type: ignore[arg-type]


@pytest.fixture
def restore_codecs() -> Any:
    yield
    codecs.configure(load_settings({}, dotenv=None))


def test_legacy_setting_writes_the_reversed_order_until_set_back(restore_codecs: None) -> None:
    codecs.configure(load_settings({"RAG_AVRO_FINGERPRINT": "legacy"}, dotenv=None))
    for codec, record, _ in CASES:
        data = codec.encode(record)
        assert data[:10] == codec.legacy_header
        assert codec.decode(data) == record
    codecs.configure(load_settings({}, dotenv=None))
    assert RAW.encode(RawDocument(tenant_id="acme", doc_id="d", version=5, text="hi")) == JAVA_RAW_MESSAGE


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RAG_AVRO_FINGERPRINT": "big-endian"}, "^RAG_AVRO_FINGERPRINT:"),
        ({"RAG_SCHEMA_REGISTRY_URL": "localhost:8081"}, "^RAG_SCHEMA_REGISTRY_URL:"),
    ],
)
def test_wire_settings_are_validated(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env, dotenv=None)


def test_confluent_framing_without_a_registry_is_bad_input() -> None:
    data = b"\x00" + (7).to_bytes(4, "big") + _raw()[10:]
    assert RAW.registry is None and RAW.unfetched_schema_id(data) is None
    with pytest.raises(BadInput, match="RAG_SCHEMA_REGISTRY_URL"):
        RAW.decode(data)


def test_headers_differ_per_record_type() -> None:
    assert len({c.header for c, _ in CODECS.values()}) == len(CODECS)


def _raw(**changes: Any) -> bytes:
    return RAW.encode(dataclasses.replace(RawDocument(tenant_id="t", doc_id="d", version=1, text="abcd"), **changes))


def test_body_layout_assumed_by_the_patch_tests() -> None:
    body = _raw()[10:]
    assert body[:6] == b"\x02t\x02d\x02\x00"
    assert body[6:11] == b"\x08abcd"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(None, id="none"),
        pytest.param(os.urandom(64), id="random"),
        pytest.param(b"\xc3\x01", id="magic-only"),
        pytest.param(b"\xc3\x02" + _raw()[2:], id="wrong-magic"),
        pytest.param(b"\x00" + _raw(), id="shifted"),
        pytest.param(MAGIC + b"\x00" * 8 + _raw()[10:], id="unknown-fingerprint"),
        pytest.param(CHUNK.header + _raw()[10:], id="other-records-fingerprint"),
        pytest.param(_raw()[:-1], id="truncated"),
        pytest.param(_raw()[:13], id="truncated-in-text"),
        pytest.param(_raw() + b"\x00", id="trailing-bytes"),
        pytest.param(_raw().replace(b"abcd", b"\xff\xfe\xc3\x28"), id="invalid-utf8-text"),
        pytest.param(_raw()[:15] + b"\x0a" + _raw()[16:], id="enum-index-out-of-range"),
        pytest.param(_raw()[:16] + b"\x7f" + _raw()[17:], id="string-length-past-end"),
    ],
)
def test_decode_rejects_malformed_input(data: bytes | None) -> None:
    with pytest.raises(BadInput):
        RAW.decode(data)


def _dead_letter_with_key_union_index(index: bytes) -> bytes:
    data = DEADLETTER.encode(
        DeadLetter(
            topic="t", partition=0, offset=0, key=None, value=None, error_class="e", message="m", stage="s", time=0
        )
    )
    assert data[10:15] == b"\x02t\x00\x00\x00"
    return data[:14] + index + b"\x00" + data[15:]


@pytest.mark.parametrize(
    ("codec", "data"),
    [
        pytest.param(RAW, _raw()[:15] + b"\x01" + _raw()[16:], id="enum-index-minus-1-reads-as-DELETE"),
        pytest.param(RAW, _raw()[:15] + b"\x03" + _raw()[16:], id="enum-index-minus-2-reads-as-UPSERT"),
        pytest.param(DEADLETTER, _dead_letter_with_key_union_index(b"\x01"), id="union-index-minus-1"),
    ],
)
def test_decode_rejects_a_negative_enum_or_union_index(codec: AvroCodec[Any], data: bytes) -> None:
    with pytest.raises(BadInput):
        codec.decode(data)


@pytest.mark.parametrize(("codec", "record", "name"), CASES, ids=[c[2] for c in CASES])
def test_every_truncation_is_rejected(codec: AvroCodec[Any], record: Any, name: str) -> None:
    data = codec.encode(record)
    for cut in range(len(data)):
        with pytest.raises(BadInput):
            codec.decode(data[:cut])


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=[p.name for p in SCHEMA_FILES])
def test_schema_files_parse(path: Path) -> None:
    parsed = fastavro.parse_schema(json.loads(path.read_text()))
    assert parsed["type"] == "record"


def test_every_record_has_a_schema_file() -> None:
    assert {p.stem for p in SCHEMA_DIR.glob("*.avsc")} == set(CODECS)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_schema_fields_are_the_record_fields(name: str) -> None:
    _, record_type = CODECS[name]
    schema_fields = [f["name"] for f in load_schema(name)["fields"]]
    assert len(schema_fields) == len(set(schema_fields))
    assert set(schema_fields) == {f.name for f in dataclasses.fields(record_type)}


@pytest.mark.parametrize("name", sorted(CODECS))
def test_schema_defaults_match_record_defaults(name: str) -> None:
    _, record_type = CODECS[name]
    by_name = {f.name: f for f in dataclasses.fields(record_type)}
    for field in load_schema(name)["fields"]:
        if "default" not in field:
            continue
        f = by_name[field["name"]]
        if f.default is not dataclasses.MISSING:
            assert f.default == field["default"], field["name"]
        elif f.default_factory is not dataclasses.MISSING:
            assert f.default_factory() == field["default"], field["name"]


def _without_defaulted_fields(name: str) -> dict[str, Any]:
    old = copy.deepcopy(json.loads((SCHEMA_DIR / f"{name}.avsc").read_text()))
    old["fields"] = [f for f in old["fields"] if "default" not in f]
    return old


def _required_values(name: str) -> dict[str, Any]:
    record = next(r for c, r, n in CASES if n == name)
    return {f["name"]: getattr(record, f["name"]) for f in _without_defaulted_fields(name)["fields"]}


@pytest.mark.parametrize("name", sorted(CODECS))
def test_current_schema_reads_data_written_without_defaulted_fields(name: str) -> None:
    writer = parse_schema(_without_defaulted_fields(name))
    reader = load_schema(name)
    values = _required_values(name)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, writer, values)
    buf.seek(0)
    obj = fastavro.schemaless_reader(buf, writer, reader)
    defaults = {f["name"]: f["default"] for f in reader["fields"] if "default" in f}
    assert obj == {**defaults, **values}


@pytest.mark.parametrize("name", sorted(CODECS))
def test_codec_decodes_a_known_older_writer_schema(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    older = parse_schema(_without_defaulted_fields(name))
    monkeypatch.setattr(codecs, "_history", lambda schema_name: [older] if schema_name == name else [])
    _, record_type = CODECS[name]
    codec = AvroCodec(record_type, name)
    buf = io.BytesIO()
    buf.write(MAGIC + codecs._fingerprint(older))
    fastavro.schemaless_writer(buf, older, _required_values(name))
    decoded = codec.decode(buf.getvalue())
    defaults = {f["name"]: f["default"] for f in load_schema(name)["fields"] if "default" in f}
    assert decoded == record_type(**{**defaults, **_required_values(name)})
    assert codec.decode(codec.encode(decoded)) == decoded


_texts = st.text(max_size=200)
_raw_docs = st.builds(
    RawDocument,
    tenant_id=_texts,
    doc_id=_texts,
    version=st.integers(-(2**63), 2**63 - 1),
    op=st.sampled_from(["UPSERT", "DELETE"]),
    text=st.text(max_size=2000),
    content_type=_texts,
    source=_texts,
    metadata=st.dictionaries(_texts, _texts, max_size=5),
    produced_at=st.integers(-(2**63), 2**63 - 1),
)


@settings(max_examples=200, deadline=None, database=None)
@given(_raw_docs)
def test_raw_documents_round_trip(doc: RawDocument) -> None:
    data = RAW.encode(doc)
    assert data[:10] == RAW.header
    assert RAW.decode(data) == doc
