"""``rag-streams plan``: the capacity plan of ``capacity.make_plan`` as text or JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import textwrap
from typing import Any

from rag_streams.rules.capacity import (
    EMBED_RATE,
    OVERHEAD,
    PAYLOAD_BYTES,
    QUANTIZATIONS,
    TIERED,
    Plan,
    PlanInputs,
    check_quantization,
    make_plan,
    parse_count,
    parse_number,
)

__all__ = ["add_arguments", "inputs_from_args", "render", "run_plan", "to_json"]


def add_arguments(sp: argparse.ArgumentParser) -> None:
    """The plan's flags. Values are parsed by ``inputs_from_args``: a bad one is one line, exit 2."""
    sp.description = "A capacity plan from formulas (docs/multitenancy.md explains and cites them)."
    sp.add_argument("--tenants", metavar="N", required=True, help="number of tenants (100, 1k, ...)")
    sp.add_argument("--vectors-per-tenant", metavar="N", required=True, help="chunks per tenant (500k, 10M, 1.5B, ...)")
    sp.add_argument("--dim", metavar="N", default="384", help="vector dimensions [384: all-MiniLM-L6-v2]")
    sp.add_argument("--quantization", metavar="Q", default="none", help=f"{' | '.join(QUANTIZATIONS)} [none]")
    sp.add_argument("--replicas", metavar="N", default="2", help="copies of each shard (replication factor) [2]")
    sp.add_argument("--hnsw-m", metavar="M", default="16", help="HNSW m, links per point (level 0: 2m) [16]")
    sp.add_argument(
        "--payload-bytes", metavar="BYTES", default=str(PAYLOAD_BYTES), help=f"payload per point [{PAYLOAD_BYTES}]"
    )
    sp.add_argument("--node-ram-gib", metavar="GIB", default="64", help="RAM of one Qdrant node [64]")
    sp.add_argument("--node-disk-gib", metavar="GIB", default="1024", help="disk of one Qdrant node [1024]")
    sp.add_argument(
        "--embed-rate",
        metavar="PER_S",
        default=f"{EMBED_RATE:g}",
        help=f"chunks/s of one embed worker [{EMBED_RATE:g}]",
    )
    sp.add_argument(
        "--bulk-days", metavar="DAYS", default="7", help="days to embed every vector once (load, new model) [7]"
    )
    sp.add_argument("--p99-budget-ms", metavar="MS", default="500", help="query latency budget at p99 [500]")
    sp.add_argument("--json", action="store_true", help="print the plan as JSON")


def inputs_from_args(a: argparse.Namespace) -> PlanInputs:
    return PlanInputs(
        tenants=parse_count(a.tenants, "--tenants"),
        vectors_per_tenant=parse_count(a.vectors_per_tenant, "--vectors-per-tenant"),
        dim=int(parse_number(a.dim, "--dim", 1, 65_536, integer=True)),
        quantization=check_quantization(a.quantization),
        replicas=int(parse_number(a.replicas, "--replicas", 1, 16, integer=True)),
        hnsw_m=int(parse_number(a.hnsw_m, "--hnsw-m", 2, 128, integer=True)),
        payload_bytes=int(parse_number(a.payload_bytes, "--payload-bytes", 0, 2**24, integer=True)),
        node_ram_gib=parse_number(a.node_ram_gib, "--node-ram-gib", 1, 2**20),
        node_disk_gib=parse_number(a.node_disk_gib, "--node-disk-gib", 1, 2**30),
        embed_rate=parse_number(a.embed_rate, "--embed-rate", 0.001, 1e9),
        bulk_days=parse_number(a.bulk_days, "--bulk-days", 0.001, 36_500),
        p99_budget_ms=parse_number(a.p99_budget_ms, "--p99-budget-ms", 1, 1e6),
    )


def run_plan(a: argparse.Namespace) -> int:
    plan = make_plan(inputs_from_args(a))
    print(json.dumps(to_json(plan), indent=2) if a.json else render(plan))
    return 0


def to_json(plan: Plan) -> dict[str, Any]:
    return dataclasses.asdict(plan)


def size(n: float) -> str:
    """Bytes in binary units: ``1.40 TiB``, ``715.3 GiB``, ``32.0 MiB``, ``768 B``."""
    for unit, scale, digits in (("TiB", 2**40, 2), ("GiB", 2**30, 1), ("MiB", 2**20, 1), ("KiB", 2**10, 1)):
        if n >= scale:
            return f"{n / scale:,.{digits}f} {unit}"
    return f"{n:,.0f} B"


def render(plan: Plan) -> str:
    p = plan.inputs
    q = p.quantization
    lines = [
        f"plan: {p.tenants:,} tenants x {p.vectors_per_tenant:,} vectors = {plan.total_vectors:,} vectors, "
        f"dim {p.dim}, quantization {q}, {p.replicas} replicas",
        "",
        "Kafka",
        "  key                  tenant/doc_id: a document's versions and chunks in order on one partition,",
        "                       a tenant's documents spread over all partitions",
        f"  embed every vector   {plan.total_vectors:,} chunks in {p.bulk_days:g} days = "
        f"{plan.bulk_rate:,.0f} chunks/s",
        f"  embed workers        {plan.embed_workers:,} at {p.embed_rate:g} chunks/s each",
        f"  partitions           {plan.partitions:,} (2 x embed workers, at least 4; choose once: more later "
        "moves keys)",
        f"  embeddings topic     {plan.topic_bytes_per_s / 1e6:,.1f} MB/s ({plan.message_bytes:,} B a record)",
        "",
        "Qdrant layout",
        *textwrap.wrap(
            f"{plan.layout}: {plan.collections:,} collection{'s' if plan.collections > 1 else ''}, "
            f"{_shards(plan)}, {plan.shards_total:,} shards with replicas",
            98,
            initial_indent="  ",
            subsequent_indent="    ",
        ),
        *textwrap.wrap(f"why: {plan.layout_reason}", 98, initial_indent="  ", subsequent_indent="       "),
        "",
        f"Per vector                             RAM      disk   ({'originals on disk' if q != 'none' else 'all in RAM'})",
        _row("float32 originals", 0 if q != "none" else plan.original_bytes, plan.original_bytes),
    ]
    if q != "none":
        lines.append(_row(f"{q} copy (always_ram)", plan.quantized_bytes, plan.quantized_bytes))
    lines += [
        _row(f"HNSW links (2 x m={p.hnsw_m} x 4 B)", plan.link_bytes, plan.link_bytes),
        _row("payload", 0, p.payload_bytes),
        _row(f"sum x {OVERHEAD:g} (indexes, optimizer)", plan.ram_per_vector, plan.disk_per_vector),
        "",
        f"{'Totals':<27}{'one copy':>12} {f'x {p.replicas} replicas':>12}",
        _total("RAM", size(plan.ram), size(plan.ram_total)),
        _total("disk", size(plan.disk), size(plan.disk_total)),
        _total("a tenant's RAM", size(plan.tenant_ram), ""),
        _total("WAL (32 MiB a shard)", "", size(plan.wal_total)),
        f"  Qdrant's rule of thumb, n x dim x 4 x {OVERHEAD:g} (all float32 in RAM): "
        f"{size(plan.rule_of_thumb_ram)} a copy",
        "",
        f"Nodes ({p.node_ram_gib:g} GiB RAM, {p.node_disk_gib:g} GiB disk, planned 75% full)",
        f"  {plan.nodes:,} nodes: {plan.nodes_for_ram:,} for RAM, {plan.nodes_for_disk:,} for disk, "
        f"at least {p.replicas} for the replicas; {plan.shards_per_node:,} shards a node",
        "",
        f"p99 budget {p.p99_budget_ms:g} ms (sum of each part's p99: an upper bound)",
    ]
    lines += [f"  {b.name:<44} {b.ms:>7.1f} ms  {b.source}" for b in plan.budget]
    lines += [
        f"  {'sum':<44} {plan.budget_used_ms:>7.1f} ms",
        f"  {'headroom (queueing under load, retries)':<44} {plan.headroom_ms:>7.1f} ms",
    ]
    return "\n".join(lines)


def _row(name: str, ram: float, disk: float) -> str:
    return f"  {name:<34} {f'{ram:,.0f} B' if ram else '-':>7} {disk:>7,.0f} B"


def _total(name: str, one: str, replicated: str) -> str:
    return f"  {name:<25}{one:>12} {replicated:>12}".rstrip()


def _shards(plan: Plan) -> str:
    if plan.layout == TIERED:
        shared = plan.shards_total // plan.inputs.replicas
        return f"the tenants share the fallback shard key ({shared} shard{'s' if shared > 1 else ''})"
    return f"{plan.shards_per_tenant} shard{'s' if plan.shards_per_tenant > 1 else ''} a tenant"
