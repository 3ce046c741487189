"""Avro wire format of every topic, with the schemas in ``schemas/avro/``.

Each message is Avro single-object encoded exactly as the Avro specification defines it (what
Apache Avro's Java ``BinaryMessageEncoder`` writes): ``C3 01``, the writer schema's CRC-64-AVRO
fingerprint of its parsing canonical form as 8 little-endian bytes, then the schemaless Avro body.

Reading also accepts

* the fingerprint's bytes reversed: what rag-streams wrote before it followed the specification,
  so a backlog written by older versions is still read (``RAG_AVRO_FINGERPRINT=legacy`` keeps
  writing that order during a rolling upgrade: see docs/wire-format.md);
* the Confluent Schema Registry framing (``00`` + 4-byte big-endian schema id + body) once a
  :class:`~rag_streams.adapters.schema_registry.SchemaRegistry` is configured (``RAG_SCHEMA_REGISTRY_URL``)
  and the id's schema has been fetched (:meth:`AvroCodec.fetch_schema`, awaited by the agent).

A reader resolves any writer schema it knows (the current one, an older one kept in
``schemas/avro/history/``, or one from the registry) to its current reader schema, so schemas can
evolve backward-compatibly. Anything undecodable raises :class:`BadInput`.
"""

from __future__ import annotations

import dataclasses
import io
import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import fastavro
from fastavro._read_common import SchemaResolutionError
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from rag_streams.errors import BadInput
from rag_streams.rules.records import Chunk, DeadLetter, EmbeddingUpsert, RawDocument

if TYPE_CHECKING:
    from rag_streams.adapters.schema_registry import SchemaRegistry
    from rag_streams.settings import Settings

__all__ = ["CHUNK", "DEADLETTER", "EMBEDDING", "RAW", "AvroCodec", "configure", "load_schema"]

MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
R = TypeVar("R")
_READ_ERRORS = (EOFError, ValueError, TypeError, KeyError, IndexError, OverflowError, MemoryError)


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
    """CRC-64-AVRO of the parsing canonical form, little-endian: the single-object header's 8 bytes.

    fastavro's hex string already lists the bytes in that order (as Java's encoder writes them).
    """
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def _legacy_fingerprint(schema: dict[str, Any]) -> bytes:
    """The same fingerprint with its bytes reversed: rag-streams' framing before it followed the spec."""
    return _fingerprint(schema)[::-1]


class AvroCodec(Generic[R]):
    """Encode/decode one record type; ``decode`` raises BadInput on anything malformed."""

    def __init__(self, record_type: type[R], schema_name: str) -> None:
        self.record_type = record_type
        self.schema_name = schema_name
        self.schema = load_schema(schema_name)
        self._canonical_form = to_parsing_canonical_form(self.schema)
        self.standard_header = MAGIC + _fingerprint(self.schema)
        self.legacy_header = MAGIC + _legacy_fingerprint(self.schema)
        self.header = self.standard_header  # what encode writes (configure() may pick the legacy order)
        known = [*_history(schema_name), self.schema]  # the current schema last: it wins a tie
        self._accepted = [(fp(s), s) for fp in (_legacy_fingerprint, _fingerprint) for s in known]
        self.writers: dict[bytes, dict[str, Any]] = dict(self._accepted)  # the standard order wins a tie
        self.registry: SchemaRegistry | None = None
        self._registry_writers: dict[int, dict[str, Any]] = {}
        self._fields = {f.name for f in dataclasses.fields(record_type)}  # type: ignore[arg-type]

    def known_fingerprints(self) -> list[tuple[bytes, str]]:
        """Each 8-byte value decode accepts after ``C3 01`` (both orders), with its schema's canonical form."""
        return [(fp, to_parsing_canonical_form(s)) for fp, s in self._accepted]

    def encode(self, record: R) -> bytes:
        buf = io.BytesIO()
        buf.write(self.header)
        fastavro.schemaless_writer(buf, self.schema, _asdict(record))
        return buf.getvalue()

    # Confluent Schema Registry framing ----------------------------------------------------
    def unfetched_schema_id(self, data: bytes | None) -> int | None:
        """The schema id of a Confluent-framed message whose writer schema must be fetched first, else None."""
        if self.registry is None or not data or data[:1] != CONFLUENT_MAGIC or len(data) < 5:
            return None
        schema_id = int.from_bytes(data[1:5], "big")
        return None if self.registry.get(schema_id) is not None else schema_id

    async def fetch_schema(self, schema_id: int) -> None:
        """Fetch (once, then cached) the registry's schema ``schema_id``; BadInput if there is none."""
        if self.registry is None:
            raise BadInput("Confluent framing, but no schema registry is configured (RAG_SCHEMA_REGISTRY_URL)")
        await self.registry.fetch(schema_id)

    def _confluent_writer(self, data: bytes) -> dict[str, Any]:
        if len(data) < 5:
            raise BadInput("Confluent framing cut short: no 4-byte schema id")
        schema_id = int.from_bytes(data[1:5], "big")
        if self.registry is None:
            raise BadInput(
                f"Confluent Schema Registry framing (schema id {schema_id}), but RAG_SCHEMA_REGISTRY_URL is not set"
            )
        writer = self._registry_writers.get(schema_id)
        if writer is None:
            fetched = self.registry.get(schema_id)
            if fetched is None:
                raise BadInput(f"schema id {schema_id} has not been fetched from the schema registry")
            # the current schema under another id: decoded (and checked) exactly like our own framing
            same = to_parsing_canonical_form(fetched) == self._canonical_form
            writer = self._registry_writers[schema_id] = self.schema if same else fetched
        return writer

    # Decoding ---------------------------------------------------------------------------------
    def decode(self, data: bytes | None) -> R:
        if not data:
            raise BadInput("empty message value")
        if data[:1] == CONFLUENT_MAGIC:
            writer, start = self._confluent_writer(data), 5
        elif data[:2] != MAGIC or len(data) < 10:
            raise BadInput("not Avro single-object encoded (bad magic bytes)")
        else:
            found = self.writers.get(data[2:10])
            if found is None:
                raise BadInput(f"unknown writer schema fingerprint {data[2:10].hex()}")
            writer, start = found, 10
        body = data[start:]
        buf = io.BytesIO(body)
        try:
            obj = cast("dict[str, Any]", fastavro.schemaless_reader(buf, writer, self.schema))
        except UnicodeDecodeError as exc:
            raise BadInput(f"invalid UTF-8 in a string field: {exc.reason}") from exc
        except SchemaResolutionError as exc:
            raise BadInput(f"writer schema does not resolve to {self.schema_name}: {exc}"[:300]) from exc
        except _READ_ERRORS as exc:
            raise BadInput(f"invalid Avro body: {type(exc).__name__}: {exc}"[:300]) from exc
        if buf.tell() != len(body):
            raise BadInput("trailing bytes after the Avro body")
        if writer is self.schema and not self._canonical(obj, body):
            # fastavro reads a negative enum/union index Python-style (symbols[-1]); only the
            # canonical encoding of what was read is accepted.
            raise BadInput("invalid Avro body: non-canonical encoding (e.g. a negative enum or union index)")
        return self.record_type(**{k: v for k, v in obj.items() if k in self._fields})  # type: ignore[call-arg]

    def _canonical(self, obj: dict[str, Any], body: bytes) -> bool:
        try:
            return _canonical_bytes(self.schema, obj) == body
        except (ValueError, TypeError):
            return False

    def single_object(self, data: bytes, record: R) -> bytes:
        """``data`` itself if it is single-object encoded, else ``record`` re-encoded so (e.g. a
        Confluent-framed message copied to a topic that readers without the registry read)."""
        return data if data[:2] == MAGIC else self.encode(record)


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
ALL: tuple[AvroCodec[Any], ...] = (RAW, CHUNK, EMBEDDING, DEADLETTER)


def check_unambiguous(codecs: tuple[AvroCodec[Any], ...] = ALL) -> None:
    """Every 8-byte value accepted after ``C3 01`` (either order, any codec) names one schema only.

    Reading both byte orders is safe only while no schema's reversed fingerprint equals another
    schema's fingerprint; a schema change that breaks this fails here, at import, not on the wire.
    """
    seen: dict[bytes, str] = {}
    for codec in codecs:
        for fp, canonical in codec.known_fingerprints():
            if seen.setdefault(fp, canonical) != canonical:
                raise RuntimeError(f"fingerprint {fp.hex()} names two schemas: reading both byte orders is ambiguous")


check_unambiguous()


def configure(settings: Settings) -> None:
    """Apply the wire-format settings to every codec: the fingerprint order written
    (``RAG_AVRO_FINGERPRINT``) and the Confluent schema registry (``RAG_SCHEMA_REGISTRY_URL``)."""
    from rag_streams.adapters.schema_registry import SchemaRegistry

    legacy = settings.avro_fingerprint == "legacy"
    url = settings.schema_registry_url
    registry = RAW.registry if RAW.registry is not None and RAW.registry.url == (url or "").rstrip("/") else None
    if url and registry is None:
        registry = SchemaRegistry(url)
    for codec in ALL:
        codec.header = codec.legacy_header if legacy else codec.standard_header
        if codec.registry is not registry:
            codec.registry, codec._registry_writers = registry, {}
