"""100 tenants on one worker with the embedded Qdrant Edge store (issue 15, item 4).

Every tenant gets its own collection (a directory and one open Edge shard each). The test publishes
two short documents to each of 100 tenants (the same two doc ids for all: only the tenant tells them
apart), then checks isolation for every tenant, `verify` for a sample, `lag` drained, and that the
worker's open files and memory grow by a bounded amount per tenant.

How the figures are read: open files = entries of /proc/<worker pid>/fd; memory = VmRSS and VmHWM
(peak) of /proc/<worker pid>/status. The baseline is taken after the first 10 tenants are indexed
(the model is loaded by then), so the growth over the other 90 is what a tenant costs.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import orjson
import pytest

pytestmark = pytest.mark.integration

TENANTS = [f"t{i:03d}" for i in range(100)]
WARMUP = 10
#: open files a tenant may add: measured 1 (its Edge shard); 5 fails if each kept, say, its segment files open
FDS_PER_TENANT = 5
#: resident memory a tenant may add (MiB): measured about 0.5; 3 fails on a leak of a buffer per tenant
RSS_MIB_PER_TENANT = 3.0


def documents(tenant: str) -> dict[str, str]:
    n = int(tenant[1:])
    return {
        "profile.md": f"Profile of tenant {tenant}. This customer number {n} runs a bakery and a bicycle shop.",
        "notes.md": f"Meeting notes of tenant {tenant}: the quarterly review of customer {n} went well.",
    }


def figures(pid: int) -> dict[str, float]:
    out: dict[str, float] = {"fds": len(os.listdir(f"/proc/{pid}/fd"))}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024  # kB -> MiB
    return out


async def cli(pipeline: Any, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rag_streams.cli",
        *args,
        env=pipeline.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    return proc.returncode or 0, out.decode(errors="replace")


async def publish_and_wait(pipeline: Any, tenants: list[str]) -> None:
    async with pipeline.producer() as p:
        for tenant in tenants:
            for doc_id, text in documents(tenant).items():
                await p.upsert(tenant, doc_id, text, version=1)
    pending = set(tenants)

    async def all_indexed() -> bool:
        for tenant in sorted(pending):
            status, body = await pipeline.api("GET", f"/v1/tenants/{tenant}/points")
            if status == 200 and {pt["doc_id"] for pt in body["points"]} == set(documents(tenant)):
                pending.discard(tenant)
        return not pending

    await pipeline.wait_for(all_indexed, timeout=600, what=f"{len(tenants)} tenants indexed")


async def test_hundred_tenants_on_one_worker_stay_isolated_and_bounded(pipeline: Any) -> None:
    assert pipeline.worker.proc is not None
    pid = pipeline.worker.proc.pid
    idle = figures(pid)
    await publish_and_wait(pipeline, TENANTS[:WARMUP])
    warm = figures(pid)
    await publish_and_wait(pipeline, TENANTS[WARMUP:])
    full = figures(pid)
    grown = len(TENANTS) - WARMUP
    fds_each = (full["fds"] - warm["fds"]) / grown
    rss_each = (full["VmRSS"] - warm["VmRSS"]) / grown
    print(
        f"\nworker {pid}: idle {idle['fds']:.0f} fds, RSS {idle['VmRSS']:.0f} MiB;"
        f" {WARMUP} tenants {warm['fds']:.0f} fds, RSS {warm['VmRSS']:.0f} MiB;"
        f" {len(TENANTS)} tenants {full['fds']:.0f} fds, RSS {full['VmRSS']:.0f} MiB (peak {full['VmHWM']:.0f} MiB);"
        f" per tenant {fds_each:.2f} fds, {rss_each:.2f} MiB"
    )

    # isolation: every tenant holds exactly its own two documents, and its search finds nothing else
    for tenant in TENANTS:
        points = await pipeline.points(tenant)
        assert {pt["doc_id"] for pt in points} == set(documents(tenant)), tenant
        assert all(pt["tenant_id"] == tenant for pt in points), (tenant, points)
    for tenant in TENANTS[::11]:
        results = await pipeline.search(tenant, f"quarterly review of customer {int(tenant[1:])}", k=10)
        assert results and all(f"tenant {tenant}" in r["text"] for r in results), (tenant, results)
        assert {r["doc_id"] for r in results} == set(documents(tenant))
    status, body = await pipeline.api("GET", "/v1/tenants/t100/points")  # never published
    assert status == 200 and body["points"] == [], body

    # verify is per tenant: a sample, each against its own slice of rag.documents.latest
    for tenant in (TENANTS[0], TENANTS[57], TENANTS[-1]):
        code, out = await cli(pipeline, "verify", "--tenant", tenant)
        assert code == 0, out
        assert f"tenant {tenant}: 2 live document(s)" in out, out

    # the whole group drained: no lag left on any partition
    async def drained() -> bool:
        code, out = await cli(pipeline, "lag", "--json", "--interval", "0")
        assert code == 0, out
        report = orjson.loads(out[out.index("{") :])
        return bool(report["total_lag"] == 0)

    await pipeline.wait_for(drained, timeout=120, what="lag 0")

    assert fds_each <= FDS_PER_TENANT, (idle, warm, full)
    assert rss_each <= RSS_MIB_PER_TENANT, (idle, warm, full)
