"""The one settings object: every ``RAG_*`` environment variable, validated at start.

No other module reads ``os.environ``; everything receives a :class:`Settings`.
A ``.env`` file in the working directory may set the same variables (the real
environment wins).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rag_streams.settings_checks import TENANT_RE, convert, read_dotenv, validate

__all__ = ["Settings", "SettingsError", "load_settings"]


class SettingsError(ValueError):
    """A ``RAG_*`` variable has a bad value; the message names it."""


def _env(name: str, doc: str, **kwargs: Any) -> Any:
    return field(metadata={"env": name, "doc": doc}, **kwargs)


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = _env(
        "RAG_KAFKA_BOOTSTRAP", "Kafka bootstrap servers, host:port[,host:port]", default="localhost:9092"
    )
    topic_prefix: str = _env(
        "RAG_TOPIC_PREFIX", "prefix of every topic name: {prefix}.documents.raw, ...", default="rag"
    )
    topic_partitions: int = _env(
        "RAG_TOPIC_PARTITIONS", "partitions of every pipeline topic (all equal: tables are co-partitioned)", default=4
    )
    topic_replication: int = _env("RAG_TOPIC_REPLICATION", "replication factor used by `topics create`", default=1)
    raw_retention_ms: int = _env(
        "RAG_RAW_RETENTION_MS", "time retention of the raw topic (ms)", default=7 * 24 * 3600 * 1000
    )
    app_id: str = _env(
        "RAG_APP_ID", "Faust application id (consumer group and transactional id prefix)", default="rag-streams"
    )
    session_timeout_s: float = _env(
        "RAG_SESSION_TIMEOUT_S",
        "consumer group session timeout: how soon a killed worker's partitions move (broker allows 6-1800)",
        default=45.0,
    )
    group_instance_id: str | None = _env(
        "RAG_GROUP_INSTANCE_ID",
        "static consumer-group membership (KIP-345): a stable name unique to this worker (e.g. a StatefulSet"
        " pod name); restarted with the same name it takes its partitions back at once instead of after"
        " RAG_SESSION_TIMEOUT_S, but a clean stop no longer hands them over before the session times out."
        " Unset = dynamic membership",
        default=None,
    )
    processing_guarantee: str = _env("RAG_PROCESSING_GUARANTEE", "exactly_once | at_least_once", default="exactly_once")
    data_dir: Path = _env(
        "RAG_DATA_DIR", "local state: Faust table stores and the embedded Qdrant", default=Path(".rag-data")
    )
    table_store: str = _env(
        "RAG_TABLE_STORE",
        "Faust table store URL: rocksdict:// (RocksDB through rocksdict) or memory://",
        default="rocksdict://",
    )
    qdrant_url: str | None = _env(
        "RAG_QDRANT_URL", "Qdrant server URL; unset = the embedded Qdrant Edge store at RAG_QDRANT_PATH", default=None
    )
    qdrant_path: Path | None = _env(
        "RAG_QDRANT_PATH", "embedded Qdrant Edge directory (default {RAG_DATA_DIR}/qdrant-edge)", default=None
    )
    edge_index_threshold: int = _env(
        "RAG_EDGE_INDEX_THRESHOLD",
        "embedded store: points written to a collection before its HNSW index is rebuilt (in a child process)",
        default=20_000,
    )
    qdrant_api_key: str | None = _env("RAG_QDRANT_API_KEY", "API key of the Qdrant server", default=None)
    quantization: str = _env(
        "RAG_QUANTIZATION",
        "none | int8: collections created from now on also keep int8 scalar-quantized vectors (searched"
        " first, rescored with the originals); existing collections keep theirs. Embedded and server",
        default="none",
    )
    vector_store: str | None = _env(
        "RAG_VECTOR_STORE",
        "module:callable that takes the Settings and returns a VectorStore; unset = qdrant-client",
        default=None,
    )
    collection_prefix: str = _env(
        "RAG_COLLECTION_PREFIX", "tenant alias is {prefix}_{tenant}, collections {prefix}_{tenant}__v{n}", default="rag"
    )
    embed_model: str | None = _env(
        "RAG_EMBED_MODEL", "sentence-transformers model name or path; unset = packaged all-MiniLM-L6-v2", default=None
    )
    embed_device: str = _env("RAG_EMBED_DEVICE", "torch device for the model: cpu, cuda, cuda:0, mps", default="cpu")
    embed_batch: int = _env(
        "RAG_EMBED_BATCH",
        "chunks per model batch (stream.take size). On a 2-core CPU, 8 encodes as fast as 64, peaks"
        " ~450 MB lower and bounds how long a fresh update waits behind a batch in progress (about"
        " 0.3 s); on a GPU raise it (64-256)",
        default=8,
    )
    embed_batches_per_take: int = _env(
        "RAG_EMBED_BATCHES_PER_TAKE",
        "model batches the embed stage takes from its input at once (up to RAG_EMBED_BATCH x this"
        " events, only what is already queued): they are queued on the model thread together and run"
        " back to back while the event loop sends the outputs of those done, so under a backlog the model"
        " does not idle between batches. 1: a batch a take, no overlap",
        default=4,
    )
    embed_window_s: float = _env(
        "RAG_EMBED_WINDOW_S",
        "batching tick of the embed and index stages (seconds): a batch is handed on at the first tick"
        " that finds events in it, or as soon as it holds RAG_EMBED_BATCH; what queued while the previous"
        " batch ran fills the next at once, so a short tick costs no batch size under load",
        default=0.02,
    )
    bulk_embed_batch: int = _env(
        "RAG_BULK_EMBED_BATCH",
        "chunks per model batch of a bulk load (documents published with `publish --bulk` to"
        " {prefix}.documents.raw.bulk). The bulk lane embeds only while the interactive lane has nothing"
        " to embed, a batch at a time, so an update waits for at most one bulk batch. A large document's"
        " chunks (RAG_BULK_MIN_CHUNKS) go in batches of RAG_EMBED_BATCH, the interactive lane's size",
        default=4,
    )
    commit_interval_s: float = _env(
        "RAG_COMMIT_INTERVAL_S",
        "seconds between Faust's offset commits; under exactly_once each commit ends the open Kafka"
        " transactions, and a stage's output becomes visible to the next stage only then, so produce ->"
        " searchable is about two intervals (0.1, Kafka Streams' exactly-once default: ~0.3 s; Faust's own"
        " default, 2.8, made it 5-8 s). Longer intervals mean fewer, larger transactions",
        default=0.1,
    )
    chunk_tokens: int = _env(
        "RAG_CHUNK_TOKENS", "model tokens per chunk (at most the model's max sequence length - 2)", default=200
    )
    chunk_overlap: int = _env("RAG_CHUNK_OVERLAP", "tokens shared by consecutive chunks", default=32)
    bulk_lane: bool = _env(
        "RAG_BULK_LANE",
        "consume the bulk lane ({prefix}.documents.raw.bulk: `publish --bulk`) with a second chunk and embed"
        " agent, after interactive work (docs/multitenancy.md, Fairness). Off: no bulk agents, and"
        " `publish --bulk` writes the raw topic like any other document",
        default=True,
    )
    bulk_min_chunks: int = _env(
        "RAG_BULK_MIN_CHUNKS",
        "a document published to the interactive lane whose new version is this many chunks or more goes"
        " on in the bulk lane (its chunks to {prefix}.documents.chunks.bulk; an unchanged re-publish, one"
        " retag record, stays), so an update of a few chunks never waits behind a large document's model"
        " time (docs/multitenancy.md, Fairness). 0: only `publish --bulk` uses the bulk lane. Needs RAG_BULK_LANE",
        default=24,
    )
    retag_unchanged: bool = _env(
        "RAG_RETAG_UNCHANGED",
        "chunk stage: a new version with the same text and metadata as the live one is one retag record"
        " (the stored points take the new version; no chunking, no model, one store write) instead of"
        " its chunks. Upgrade embed and index workers before chunk workers (docs/how-it-works.md);"
        " false = every version is chunked",
        default=True,
    )
    max_doc_bytes: int = _env(
        "RAG_MAX_DOC_BYTES",
        "largest accepted document text (UTF-8 bytes); larger is dead-lettered",
        default=2 * 1024 * 1024,
    )
    upsert_rate: float = _env("RAG_UPSERT_RATE", "global token bucket for Qdrant upserts (points/s)", default=2000.0)
    tenant_upsert_rate: float = _env(
        "RAG_TENANT_UPSERT_RATE", "per-tenant token bucket for Qdrant upserts (points/s)", default=1000.0
    )
    reindex_upsert_rate: float = _env(
        "RAG_REINDEX_UPSERT_RATE",
        "token bucket of `reindex` and `restore` bulk upserts (points/s): keep it below RAG_TENANT_UPSERT_RATE so live writes stay fresh",
        default=200.0,
    )
    window_timezone: str = _env(
        "RAG_WINDOW_TIMEZONE",
        "time zone of the `--window HH:MM-HH:MM` of `publish` and `reindex`: local (the machine's) or an"
        " IANA name such as UTC or Europe/Paris",
        default="local",
    )
    reindex_grace_s: float = _env(
        "RAG_REINDEX_GRACE_S",
        "seconds `reindex` keeps the old collection after flipping the alias (queries in flight finish), then drops it",
        default=60.0,
    )
    search_timeout_s: float = _env(
        "RAG_SEARCH_TIMEOUT_S", "seconds a search waits for the vector store before it counts as failed", default=2.0
    )
    min_version_wait_s: float = _env(
        "RAG_MIN_VERSION_WAIT_S",
        "seconds a search with min_version waits at most for those document versions to be indexed "
        "(each transactional hop of the pipeline adds up to RAG_COMMIT_INTERVAL_S)",
        default=10.0,
    )
    breaker_failures: int = _env(
        "RAG_BREAKER_FAILURES",
        "vector-store failures in a row (timeouts, connection errors, 5xx) that open the search circuit breaker",
        default=5,
    )
    breaker_reset_s: float = _env(
        "RAG_BREAKER_RESET_S",
        "seconds an open circuit breaker answers `degraded` before it lets one trial search through",
        default=10.0,
    )
    redis_url: str = _env(
        "RAG_REDIS_URL",
        "Redis URL of the search answer cache (keys under rag:{RAG_APP_ID}:); empty: no cache",
        default="redis://127.0.0.1:6379/0",
    )
    cache_ttl: int = _env("RAG_CACHE_TTL", "seconds a cached search answer lives", default=300)
    fallback_chunks: int = _env(
        "RAG_FALLBACK_CHUNKS",
        "chunks the API's fallback index keeps (the most-queried, with their vectors) to answer while the"
        " vector store is unavailable (docs/http-api.md); 0 = off",
        default=10_000,
    )
    canary_tenant: str = _env(
        "RAG_CANARY_TENANT",
        "tenant reserved for `rag-streams canary` and the canary task: its two documents live there, no real"
        " tenant may use this name",
        default="rag-canary",
    )
    canary_interval_s: float = _env(
        "RAG_CANARY_INTERVAL_S",
        "seconds between the index worker's canary runs (rag_canary_success, rag_canary_latency_seconds); 0 = off",
        default=0.0,
    )
    canary_timeout_s: float = _env(
        "RAG_CANARY_TIMEOUT_S", "seconds a canary run waits for its document to be cited", default=30.0
    )
    api_keys: str = _env("RAG_API_KEYS", "comma list of key:tenant; empty = no auth (development only)", default="")
    api_keys_file: Path | None = _env(
        "RAG_API_KEYS_FILE", "file with one key:tenant per line (adds to RAG_API_KEYS)", default=None
    )
    web_host: str = _env("RAG_WEB_HOST", "address the worker's HTTP API binds", default="127.0.0.1")
    web_port: int = _env("RAG_WEB_PORT", "port of the worker's HTTP API", default=6066)
    api_url: str = _env(
        "RAG_API_URL",
        "query API used by `rag-streams search` (default http://{RAG_WEB_HOST}:{RAG_WEB_PORT})",
        default="",
    )
    log_format: str = _env("RAG_LOG_FORMAT", "json | console", default="console")
    log_level: str = _env("RAG_LOG_LEVEL", "debug | info | warning | error", default="info")
    lag_interval_s: float = _env(
        "RAG_LAG_INTERVAL_S",
        "seconds between the worker's reads of its group's consumer lag (rag_kafka_consumer_lag,"
        " rag_drain_time_seconds; exported by the group leader); 0 = off",
        default=15.0,
    )
    health_interval_s: float = _env(
        "RAG_HEALTH_INTERVAL_S",
        "seconds between the index worker's index-health checks: each tenant's stored point count against"
        " the count its version tables expect (rag_index_points, rag_index_expected_points); 0 = off",
        default=60.0,
    )
    avro_fingerprint: str = _env(
        "RAG_AVRO_FINGERPRINT",
        "byte order of the schema fingerprint this process writes in each message's Avro single-object"
        " header: standard (little-endian, as the Avro specification and Apache Avro's libraries write) or"
        " legacy (reversed, as rag-streams wrote before; only while older workers still run during a rolling"
        " upgrade, see docs/wire-format.md). Both orders are always read",
        default="standard",
    )
    schema_registry_url: str | None = _env(
        "RAG_SCHEMA_REGISTRY_URL",
        "Confluent-compatible Schema Registry base URL (GET {url}/schemas/ids/{id}); when set, the raw topic"
        " also accepts the Confluent wire format (00 + 4-byte schema id + Avro body); unset = refused",
        default=None,
    )
    kafka_home: Path = _env(
        "RAG_KAFKA_HOME",
        "where `rag-streams kafka` caches jars and keeps broker data",
        default=Path.home() / ".cache" / "rag-streams" / "kafka",
    )
    kafka_version: str = _env(
        "RAG_KAFKA_VERSION", "Apache Kafka version fetched from Maven Central for the local broker", default="3.9.1"
    )
    allow_unverified_faust: bool = _env(
        "RAG_ALLOW_UNVERIFIED_FAUST",
        "true: a worker starts on faust-streaming/aiokafka/mode-streaming versions the Faust work-arounds "
        "were not verified on (rag_streams/_faust/registry.py; constraints.txt pins the verified ones)",
        default=False,
    )

    def __post_init__(self) -> None:
        validate(self)

    # Derived values -------------------------------------------------------
    @property
    def qdrant_location(self) -> Path:
        return self.qdrant_path or self.data_dir / "qdrant-edge"

    @property
    def faust_store(self) -> str:
        """Faust's URL for the store: its RocksDB store runs on rocksdict."""
        return "rocksdb://" if self.table_store == "rocksdict://" else self.table_store

    @property
    def query_api_url(self) -> str:
        return self.api_url or f"http://{self.web_host}:{self.web_port}"

    def api_key_tenants(self) -> dict[str, str]:
        """Map of API key -> tenant from RAG_API_KEYS and RAG_API_KEYS_FILE."""
        lines = [p for p in self.api_keys.split(",") if p.strip()]
        if self.api_keys_file is not None:
            try:
                text = self.api_keys_file.read_text()
            except OSError as exc:
                raise SettingsError(f"RAG_API_KEYS_FILE: cannot read {self.api_keys_file}: {exc.strerror}") from exc
            lines += [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        keys: dict[str, str] = {}
        for item in lines:
            key, sep, tenant = item.strip().partition(":")
            if not sep or not key or not TENANT_RE.fullmatch(tenant):
                raise SettingsError(f"RAG_API_KEYS: expected key:tenant, got {item.strip()!r}")
            keys[key] = tenant
        return keys

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(variable, default, doc) for every setting: used by `--help` and the docs."""
        out = []
        for f in fields(cls):
            default = "" if f.default is None else str(f.default)
            out.append((f.metadata["env"], default, f.metadata["doc"]))
        return out


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
    """Build the settings from the environment (and ``.env``); raise SettingsError naming a bad variable."""
    env: dict[str, str] = read_dotenv(dotenv) if dotenv is not None else {}
    env.update(os.environ if environ is None else environ)
    kwargs: dict[str, Any] = {}
    for f in fields(Settings):
        name = f.metadata["env"]
        if name in env:
            kwargs[f.name] = convert(f.name, f.type, env[name])
    return Settings(**kwargs)


def otel_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The OpenTelemetry SDK's own ``OTEL_*`` variables (its standard names, not ``RAG_*``; see
    docs/tracing.md): rag_streams.observability.tracing.configure reads them from here."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k.startswith("OTEL_")}
