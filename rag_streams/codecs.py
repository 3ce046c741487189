"""Avro wire format of every topic, with the schemas in ``schemas/avro/``.

Each message is Avro single-object encoded: ``C3 01``, the writer schema's 8-byte
CRC-64-AVRO fingerprint (little-endian), then the schemaless Avro body. A reader
resolves any writer schema it knows (the current one, or an older one kept in
``schemas/avro/history/``) to its current reader schema, so schemas can evolve
backward-compatibly. Anything undecodable raises :class:`BadInput`.
"""

from __future__ import annotations

import dataclasses
import io
import json
from functools import cache
from importlib import resources
from typing import Any, Generic, TypeVar, cast

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from rag_streams.errors import BadInput
from rag_streams.records import Chunk, DeadLetter, EmbeddingUpsert, RawDocument

__all__ = ["CHUNK", "DEADLETTER", "EMBEDDING", "RAW", "AvroCodec", "load_schema"]

MAGIC = b"\xc3\x01"
R = TypeVar("R")


def _schema_files() -> Any:
    return resources.files("rag_streams.schemas") / "avro"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed current schema ``schemas/avro/{name}.avsc``."""
    text = (_schema_files() / f"{name}.avsc").read_text()
    return cast("dict[str, Any]", parse_schema(json.loads(text)))


def _history(name: str) -> list[dict[str, Any]]:
    folder = _schema_files() / "history"
    if not folder.is_dir():
        return []
    return [
        cast("dict[str, Any]", parse_schema(json.loads(p.read_text())))
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.name.startswith(f"{name}.") and p.name.endswith(".avsc")
    ]


def _fingerprint(schema: dict[str, Any]) -> bytes:
    return int(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"), 16).to_bytes(8, "little")


class AvroCodec(Generic[R]):
    """Encode/decode one record type; ``decode`` raises BadInput on anything malformed."""

    def __init__(self, record_type: type[R], schema_name: str) -> None:
        self.record_type = record_type
        self.schema = load_schema(schema_name)
        self.header = MAGIC + _fingerprint(self.schema)
        self.writers = {_fingerprint(s): s for s in [*_history(schema_name), self.schema]}
        self._fields = {f.name for f in dataclasses.fields(record_type)}  # type: ignore[arg-type]

    def encode(self, record: R) -> bytes:
        buf = io.BytesIO()
        buf.write(self.header)
        fastavro.schemaless_writer(buf, self.schema, _asdict(record))
        return buf.getvalue()

    def _canonical(self, obj: dict[str, Any], data: bytes) -> bool:
        try:
            return _canonical_bytes(self.schema, obj) == data[10:]
        except (ValueError, TypeError):
            return False

    def decode(self, data: bytes | None) -> R:
        if not data:
            raise BadInput("empty message value")
        if data[:2] != MAGIC or len(data) < 10:
            raise BadInput("not Avro single-object encoded (bad magic bytes)")
        writer = self.writers.get(data[2:10])
        if writer is None:
            raise BadInput(f"unknown writer schema fingerprint {data[2:10].hex()}")
        buf = io.BytesIO(data[10:])
        try:
            obj = cast("dict[str, Any]", fastavro.schemaless_reader(buf, writer, self.schema))
        except UnicodeDecodeError as exc:
            raise BadInput(f"invalid UTF-8 in a string field: {exc.reason}") from exc
        except (EOFError, ValueError, TypeError, KeyError, IndexError, OverflowError, MemoryError) as exc:
            raise BadInput(f"invalid Avro body: {type(exc).__name__}: {exc}"[:300]) from exc
        if buf.tell() != len(data) - 10:
            raise BadInput("trailing bytes after the Avro body")
        if writer is self.schema and not self._canonical(obj, data):
            # fastavro reads a negative enum/union index Python-style (symbols[-1]); only the
            # canonical encoding of what was read is accepted.
            raise BadInput("invalid Avro body: non-canonical encoding (e.g. a negative enum or union index)")
        return self.record_type(**{k: v for k, v in obj.items() if k in self._fields})  # type: ignore[call-arg]


def _canonical_bytes(schema: dict[str, Any], obj: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, obj)
    return buf.getvalue()


def _asdict(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


RAW: AvroCodec[RawDocument] = AvroCodec(RawDocument, "RawDocument")
CHUNK: AvroCodec[Chunk] = AvroCodec(Chunk, "Chunk")
EMBEDDING: AvroCodec[EmbeddingUpsert] = AvroCodec(EmbeddingUpsert, "EmbeddingUpsert")
DEADLETTER: AvroCodec[DeadLetter] = AvroCodec(DeadLetter, "DeadLetter")
