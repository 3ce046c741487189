"""The backup and restore drill on the real broker, worker, model and embedded Qdrant Edge store.

Back up a tenant through the index worker's admin API, change it afterwards (a new document and a
new version of one), destroy the store (the worker is stopped and the store's folder deleted, as a
lost disk would), restore through the restarted worker, then: `verify` reports no drift, the
post-backup changes are searchable, and no restored chunk was embedded: the restarted embed stage
embedded nothing (its rag_embed_batch_size_sum stays 0) and the restore's catch-up embedded exactly
the chunks the embed stage had embedded for the post-backup changes, reusing the saved vectors for
the updated document's unchanged chunks.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

TENANT = "drill"
AFTER = "Basalt columns form when thick lava flows cool slowly and crack into hexagonal pillars. " * 12


def corpus() -> dict[str, str]:
    folder = resources.files("rag_streams") / "sample_corpus"
    names = ["chess-openings.md", "honeybee-colonies.md", "sourdough-baking.md", "tide-pools.md"]
    return {name: (folder / name).read_text() for name in names}


async def cli(pipeline: Any, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rag_streams.cli",
        *args,
        env={**pipeline.env, "RAG_REINDEX_GRACE_S": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
    return proc.returncode or 0, out.decode(errors="replace")


def by_doc(points: list[dict[str, Any]]) -> dict[str, set[tuple[int, int, str]]]:
    out: dict[str, set[tuple[int, int, str]]] = {}
    for p in points:
        out.setdefault(p["doc_id"], set()).add((p["chunk_index"], p["version"], p["content_hash"]))
    return out


async def test_backup_destroy_restore_verify_without_embedding_the_restored_chunks(
    pipeline: Any, tmp_path: Path
) -> None:
    docs = corpus()
    async with pipeline.producer() as p:
        for doc_id, text in docs.items():
            await p.upsert(TENANT, doc_id, text, version=1)
    await pipeline.wait_for(
        lambda: pipeline.holds_exactly(TENANT, {(d, 1) for d in docs}), timeout=300, what="the corpus indexed"
    )
    before = by_doc(await pipeline.points(TENANT))

    folder = tmp_path / "backup"
    code, out = await cli(pipeline, "backup", "--tenant", TENANT, "--to", str(folder))
    assert code == 0, out
    print(out)
    meta = json.loads((folder / "backup.json").read_text())
    assert meta["points"] == sum(len(v) for v in before.values()) and meta["documents"] == len(docs)
    assert meta["offsets"] == meta["end_offsets"] and meta["lowered"] == {}  # nothing lagged behind the scan
    assert meta["model"] == "sentence-transformers/all-MiniLM-L6-v2" and meta["dim"] == 384
    export = f"/v1/tenants/{TENANT}/collections/rag_{TENANT}__v1/points"
    status, page = await pipeline.api("GET", export + "?limit=2")
    assert status == 200 and len(page["points"]) == 2 and len(page["points"][0]["vector"]) == 384 and page["next"]
    for bad in ("?offset=not-a-point-id", "?limit=0", "?limit=x"):
        status, body = await pipeline.api("GET", export + bad)
        assert status == 400 and "detail" in body, (bad, status, body)
    code, again = await cli(pipeline, "backup", "--tenant", TENANT, "--to", str(folder))
    assert code == 2 and again.strip().splitlines()[-1].startswith("rag-streams: error: --to:"), again

    # after the backup: a new document, and a new version of one whose first chunks are unchanged
    embedded_before = await pipeline.metric("rag_embed_batch_size_sum")
    updated = "tide-pools.md"
    async with pipeline.producer() as p:
        await p.upsert(TENANT, "after.md", AFTER, version=1)
        await p.upsert(TENANT, updated, docs[updated] + "\n\nAdded after the backup: basalt shore notes.", version=2)
    expected = {*((d, 1) for d in docs if d != updated), (updated, 2), ("after.md", 1)}
    await pipeline.wait_for(lambda: pipeline.holds_exactly(TENANT, expected), timeout=300, what="the changes indexed")
    changed_chunks = int(await pipeline.metric("rag_embed_batch_size_sum") - embedded_before)
    after = by_doc(await pipeline.points(TENANT))
    unchanged = {(i, h) for i, _, h in after[updated]} & {(i, h) for i, _, h in before[updated]}
    assert unchanged and changed_chunks == len(after["after.md"]) + len(after[updated]) - len(unchanged)

    # destroy: the store's folder is lost
    pipeline.worker.stop()
    shutil.rmtree(pipeline.settings.qdrant_location)
    await pipeline.restart()
    assert await pipeline.points(TENANT) == []
    assert (await pipeline.verify(TENANT))[0] == 1

    code, out = await cli(pipeline, "restore", "--from", str(folder))
    print(out)
    assert code == 0, out
    m = re.search(
        r"restored tenant drill into rag_drill__v(\d+): (\d+) point\(s\) .* reused (\d+) and embedded (\d+)", out
    )
    assert m, out
    assert int(m.group(2)) == meta["points"]
    assert (int(m.group(3)), int(m.group(4))) == (len(unchanged), changed_chunks)  # only the post-backup text

    code, report = await pipeline.verify(TENANT)
    print(report)
    assert code == 0 and "no drift" in report, report
    assert by_doc(await pipeline.points(TENANT)) == after
    hits = await pipeline.search(TENANT, "hexagonal basalt columns from cooling lava", k=3)
    assert hits and hits[0]["doc_id"] == "after.md", hits
    assert await pipeline.metric("rag_embed_batch_size_sum") == 0  # the embed stage embedded nothing since
