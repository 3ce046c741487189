"""The capacity plan for many tenants (``rag-streams plan``): Kafka key and partitions, the Qdrant
layout, memory and disk per vector with and without quantization, nodes, and the p99 budget.

Pure formulas, no I/O: docs/multitenancy.md explains each one and where its constants come from
(Qdrant's capacity-planning and quantization docs, or a measurement on the development machine).
``capacity_report.render`` prints a plan.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from rag_streams.errors import CliError

__all__ = [
    "QUANTIZATIONS",
    "BudgetItem",
    "Plan",
    "PlanInputs",
    "check_quantization",
    "make_plan",
    "parse_count",
    "parse_number",
]

QUANTIZATIONS = ("none", "int8", "binary")
#: Qdrant's capacity planning: x1.5 for "metadata (such as indexes and point versions) and
#: temporary segments created during optimization"; applied to RAM and to disk alike
OVERHEAD = 1.5
#: plan nodes to be at most this full (Qdrant: resident memory above 80% of RAM is a problem; the
#: rest is page cache for the originals that rescoring reads, and the OS)
FILL = 0.75
LINK_BYTES = 4  # one HNSW link: a u32 point offset
WAL_BYTES_PER_SHARD = 32 * 2**20  # Qdrant's default wal_capacity_mb: 32
LARGE_TENANT = 1_000_000  # vectors: big enough for a shard of its own
MANY_TENANTS = 1_000  # collections: beyond this, one collection with a tenant key
TOP_K = 5  # `rag-streams search -k` default
TIERED = "one collection, is_tenant index (tiered)"
OVERSAMPLING = {"none": 0, "int8": 2, "binary": 4}  # rescoring reads: k x oversampling originals

# Measured on the development machine (2 cores of an AMD EPYC VM, CPU only); see docs/multitenancy.md.
EMBED_RATE = 25.0  # chunks/s of one CPU embed worker: docs/performance.md, bare-encode ceiling 25.30
QUERY_EMBED_P99_MS = 15.4  # one question through all-MiniLM-L6-v2 (scripts/plan_inputs.py)
API_CACHED_P99_MS = 1.4  # docs/performance.md: HTTP query cached p99 1.39 ms (aiohttp + auth + Redis, loopback)
STORE_P99_MS = 7.9  # docs/performance.md: Qdrant Edge query p99 at 100,000 points, HNSW built
STORE_P99_POINTS = 100_000
PAYLOAD_BYTES = 1024  # measured JSON payload per 200-token chunk: mean 828 B, p95 1,067 B
# Estimates, not measured here.
CLIENT_NETWORK_MS = 10.0  # client <-> API: TLS, one region
STORE_NETWORK_MS = 2.0  # API <-> Qdrant, same zone
DISK_READ_MS = 0.1  # one random NVMe read of an original vector, not in page cache


@dataclass(frozen=True)
class PlanInputs:
    tenants: int
    vectors_per_tenant: int
    dim: int = 384
    quantization: str = "none"
    replicas: int = 2
    hnsw_m: int = 16
    payload_bytes: int = PAYLOAD_BYTES
    node_ram_gib: float = 64.0
    node_disk_gib: float = 1024.0
    embed_rate: float = EMBED_RATE
    bulk_days: float = 7.0
    p99_budget_ms: float = 500.0


@dataclass(frozen=True)
class BudgetItem:
    name: str
    ms: float
    source: str  # "measured", "estimate" or "extrapolated"


@dataclass(frozen=True)
class Plan:
    inputs: PlanInputs
    total_vectors: int
    # per vector, bytes, before the x1.5
    original_bytes: int  # float32, n x dim x 4
    quantized_bytes: int  # int8: dim; binary: dim / 8; none: 0
    link_bytes: int  # HNSW level 0: 2 x m links of 4 bytes
    ram_per_vector: float  # 1.5 x (vectors searched in RAM + links)
    disk_per_vector: float  # 1.5 x (originals + quantized + links + payload)
    # one copy of the data, bytes
    tenant_ram: float
    ram: float
    disk: float
    rule_of_thumb_ram: float  # Qdrant's n x dim x 4 x 1.5, all vectors in RAM
    # with replicas
    ram_total: float
    disk_total: float
    nodes_for_ram: int
    nodes_for_disk: int
    nodes: int
    layout: str
    layout_reason: str
    collections: int
    shards_per_tenant: int  # what a tenant of that size would take on its own (tiered: shares them)
    shards_total: int  # replicas included
    shards_per_node: int
    wal_total: int  # bytes of WAL, replicas included
    bulk_rate: float  # chunks/s to embed every vector once within bulk_days
    embed_workers: int
    partitions: int
    message_bytes: int  # one rag.embeddings.upserts record
    topic_bytes_per_s: float
    budget: list[BudgetItem] = field(default_factory=list)
    budget_used_ms: float = 0.0
    headroom_ms: float = 0.0


_COUNT = re.compile(r"(\d+(?:\.\d+)?)([kmbg]?)")
_SCALE = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9}


def parse_count(text: str, name: str) -> int:
    """A whole positive count: ``100``, ``500k``, ``10M``, ``1.5B``, ``10_000_000``, ``10,000``."""
    match = _COUNT.fullmatch(text.strip().replace("_", "").replace(",", "").lower())
    value = Decimal(match[1]) * _SCALE[match[2]] if match else Decimal(0)
    if value < 1 or value != value.to_integral_value():
        raise CliError(f"{name}: expected a whole positive count like 100, 500k, 10M or 1.5B, got {text!r}")
    return int(value)


def parse_number(text: str, name: str, lo: float, hi: float, *, integer: bool = False) -> float:
    """A number in [lo, hi] (a whole one when ``integer``), else a one-line CliError."""
    kind = "a whole number" if integer else "a number"
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not lo <= value <= hi or (integer and value != value.to_integral_value()):
        raise CliError(f"{name}: expected {kind} from {lo:g} to {hi:g}, got {text!r}")
    return int(value) if integer else float(value)


def check_quantization(text: str) -> str:
    if text not in QUANTIZATIONS:
        raise CliError(f"--quantization: expected one of {', '.join(QUANTIZATIONS)}, got {text!r}")
    return text


def make_plan(p: PlanInputs) -> Plan:
    check_quantization(p.quantization)
    n = p.tenants * p.vectors_per_tenant
    original = p.dim * 4
    quantized = {"none": 0, "int8": p.dim, "binary": math.ceil(p.dim / 8)}[p.quantization]
    links = 2 * p.hnsw_m * LINK_BYTES
    hot = quantized or original  # what the search reads from RAM; originals stay on disk when quantized
    ram_pv = OVERHEAD * (hot + links)
    disk_pv = OVERHEAD * (original + quantized + links + p.payload_bytes)
    ram, disk = n * ram_pv, n * disk_pv
    tenant_ram = p.vectors_per_tenant * ram_pv
    usable_ram, usable_disk = p.node_ram_gib * 2**30 * FILL, p.node_disk_gib * 2**30 * FILL
    nodes_for_ram = math.ceil(ram * p.replicas / usable_ram)
    nodes_for_disk = math.ceil(disk * p.replicas / usable_disk)
    nodes = max(nodes_for_ram, nodes_for_disk, p.replicas)  # replicas of a shard on different nodes
    # a shard at most half a node's usable RAM, so two fit a node and shards can move between nodes
    shards_per_tenant = max(1, math.ceil(tenant_ram / (usable_ram / 2)))
    layout, reason = _layout(p)
    collections = p.tenants if layout == "collection per tenant" else 1
    if layout == TIERED:  # small tenants share the fallback shards: as many as their data needs
        shards_total = max(1, math.ceil(ram / (usable_ram / 2))) * p.replicas
    else:
        shards_total = p.tenants * shards_per_tenant * p.replicas
    bulk_rate = n / (p.bulk_days * 86_400)
    embed_workers = math.ceil(bulk_rate / p.embed_rate)
    message = original + p.payload_bytes
    budget = _budget(p, shards_per_tenant)
    used = round(sum(b.ms for b in budget), 1)
    return Plan(
        inputs=p,
        total_vectors=n,
        original_bytes=original,
        quantized_bytes=quantized,
        link_bytes=links,
        ram_per_vector=ram_pv,
        disk_per_vector=disk_pv,
        tenant_ram=tenant_ram,
        ram=ram,
        disk=disk,
        rule_of_thumb_ram=n * original * OVERHEAD,
        ram_total=ram * p.replicas,
        disk_total=disk * p.replicas,
        nodes_for_ram=nodes_for_ram,
        nodes_for_disk=nodes_for_disk,
        nodes=nodes,
        layout=layout,
        layout_reason=reason,
        collections=collections,
        shards_per_tenant=shards_per_tenant,
        shards_total=shards_total,
        shards_per_node=math.ceil(shards_total / nodes),
        wal_total=shards_total * WAL_BYTES_PER_SHARD,
        bulk_rate=bulk_rate,
        embed_workers=embed_workers,
        # a partition feeds one consumer of a group: room to double the workers, because adding
        # partitions later moves keys to other partitions (and the stages' tables with them)
        partitions=max(4, 2 * embed_workers),
        message_bytes=message,
        topic_bytes_per_s=bulk_rate * message,
        budget=budget,
        budget_used_ms=used,
        headroom_ms=round(p.p99_budget_ms - used, 1),
    )


def _layout(p: PlanInputs) -> tuple[str, str]:
    if p.vectors_per_tenant >= LARGE_TENANT and p.tenants <= MANY_TENANTS:
        return "collection per tenant", (
            f"every tenant is large (>= {LARGE_TENANT:,} vectors) and there are at most {MANY_TENANTS:,}: "
            "a shard of its own either way, and a collection keeps per-tenant model, reindex and alias flip"
        )
    if p.vectors_per_tenant >= LARGE_TENANT:
        return "one collection, shard key per tenant", (
            f"more than {MANY_TENANTS:,} large tenants: custom sharding, one shard key each, instead of "
            "as many collections"
        )
    return TIERED, (
        f"small tenants (< {LARGE_TENANT:,} vectors) share the fallback shard, filtered on an is_tenant "
        "keyword index; promote a tenant to its own shard key once it grows past that"
    )


def _budget(p: PlanInputs, shards_per_tenant: int) -> list[BudgetItem]:
    per_shard = p.vectors_per_tenant / shards_per_tenant
    # HNSW visits ~log(n) layers and neighbourhoods: scale the measured p99 by log n / log 100k
    search = STORE_P99_MS * max(1.0, math.log(per_shard) / math.log(STORE_P99_POINTS))
    rescore = TOP_K * OVERSAMPLING[p.quantization] * DISK_READ_MS
    items = [
        BudgetItem("client <-> API network, TLS", CLIENT_NETWORK_MS, "estimate"),
        BudgetItem("API, auth, answer cache lookup (Redis)", API_CACHED_P99_MS, "measured"),
        BudgetItem("query embedding, CPU, 1 question", QUERY_EMBED_P99_MS, "measured"),
        BudgetItem("API <-> Qdrant network", STORE_NETWORK_MS, "estimate"),
        BudgetItem(f"HNSW search, {per_shard:,.0f} points a shard", round(search, 1), "extrapolated"),
    ]
    if rescore:
        reads = TOP_K * OVERSAMPLING[p.quantization]
        items.append(BudgetItem(f"rescoring: {reads} originals read from disk", round(rescore, 1), "estimate"))
    return items
