"""Every Prometheus metric rag-streams exports, declared once. Units are in the names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["METRIC_NAMES", "REGISTRY"]

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

pipeline_latency_seconds = Histogram(
    "rag_pipeline_latency_seconds",
    "Time from the raw message's produce time to the end of a stage (index = searchable).",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
freshness_seconds = Histogram(
    "rag_freshness_seconds",
    "Produce -> searchable: from the raw message's produce time until the index stage's store write"
    " for it was acknowledged (end to end; alerted on its p99).",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
tenant_freshness_seconds = Histogram(
    "rag_tenant_freshness_seconds",
    "Produce -> searchable per tenant (as rag_freshness_seconds): whether one tenant's bulk load holds"
    " back another's updates.",
    ["tenant"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 120),
    registry=REGISTRY,
)
tenant_chunks_queued_total = Counter(
    "rag_tenant_chunks_queued_total",
    "Chunks the chunk stage queued for embedding, per tenant and lane (interactive | bulk). Minus"
    " rag_tenant_chunks_embedded_total: the tenant's backlog (recording rule rag:tenant_backlog_chunks).",
    ["tenant", "lane"],
    registry=REGISTRY,
)
tenant_chunks_embedded_total = Counter(
    "rag_tenant_chunks_embedded_total",
    "Chunks the embed stage handled (embedded, reused, forwarded or dropped), per tenant and lane.",
    ["tenant", "lane"],
    registry=REGISTRY,
)
vectorstore_query_time_seconds = Histogram(
    "rag_vectorstore_query_time_seconds",
    "Vector store search latency.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
vectorstore_upsert_seconds = Histogram(
    "rag_vectorstore_upsert_seconds",
    "Vector store upsert call latency.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
kafka_consumer_lag = Gauge(
    "rag_kafka_consumer_lag",
    "Messages not yet consumed.",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)
drain_time_seconds = Gauge(
    "rag_drain_time_seconds",
    "Estimated seconds to drain the current lag.",
    ["group"],
    registry=REGISTRY,
)
stale_writes_dropped_total = Counter(
    "rag_stale_writes_dropped_total",
    "Messages dropped because a newer version was already applied.",
    ["stage"],
    registry=REGISTRY,
)
deadletter_total = Counter(
    "rag_deadletter_total",
    "Messages sent to the dead-letter topic.",
    ["stage", "error_class"],
    registry=REGISTRY,
)
embed_batch_size = Histogram(
    "rag_embed_batch_size",
    "Chunks per model call.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    registry=REGISTRY,
)
embed_model_seconds_total = Counter(
    "rag_embed_model_seconds_total",
    "Seconds the embed stage's model spent encoding (its rate is the model's busy fraction).",
    registry=REGISTRY,
)
embed_skipped_unchanged_total = Counter(
    "rag_embed_skipped_unchanged_total",
    "Chunks not embedded again because their text was unchanged.",
    registry=REGISTRY,
)
circuit_breaker_state = Gauge(
    "rag_circuit_breaker_state",
    "0 closed, 1 half-open, 2 open.",
    ["name"],
    registry=REGISTRY,
)
cache_hits_total = Counter("rag_cache_hits_total", "Search answers served from the cache.", registry=REGISTRY)
cache_misses_total = Counter("rag_cache_misses_total", "Search answers not in the cache.", registry=REGISTRY)
retagged_total = Counter(
    "rag_retagged_total",
    "Document versions re-published unchanged and handled as one retag record (no chunks, no model).",
    ["stage"],
    registry=REGISTRY,
)
chunks_indexed_total = Counter(
    "rag_chunks_indexed_total",
    "Chunks upserted into the vector store.",
    ["tenant"],
    registry=REGISTRY,
)
messages_processed_total = Counter(
    "rag_messages_processed_total",
    "Messages handled per stage.",
    ["stage"],
    registry=REGISTRY,
)
index_points = Gauge(
    "rag_index_points",
    "Points in the tenant's aliased collection, counted by the index worker every RAG_HEALTH_INTERVAL_S.",
    ["tenant"],
    registry=REGISTRY,
)
index_expected_points = Gauge(
    "rag_index_expected_points",
    "Points the index stage's version tables expect in the tenant's collection, over this worker's"
    " partitions (sum over the index workers for the tenant's total).",
    ["tenant"],
    registry=REGISTRY,
)
fallback_answers_total = Counter(
    "rag_fallback_answers_total",
    "Degraded search answers (store unavailable): outcome=hit from the fallback index, empty when it had nothing.",
    ["outcome"],
    registry=REGISTRY,
)
fallback_chunks = Gauge(
    "rag_fallback_chunks", "Chunks held by the fallback index (RAG_FALLBACK_CHUNKS at most).", registry=REGISTRY
)
canary_success = Gauge(
    "rag_canary_success", "1 if the last canary run found its document cited in time, else 0.", registry=REGISTRY
)
canary_latency_seconds = Gauge(
    "rag_canary_latency_seconds",
    "The last successful canary run: from publishing its document to the search that cited it.",
    registry=REGISTRY,
)
canary_consecutive_failures = Gauge(
    "rag_canary_consecutive_failures", "Canary runs failed in a row (0 after a success).", registry=REGISTRY
)

#: Names as Prometheus exposes them (counters with ``_total``; histograms add ``_bucket/_sum/_count``).
METRIC_NAMES = frozenset(f.name + "_total" if f.type == "counter" else f.name for f in REGISTRY.collect())
