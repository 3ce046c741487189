"""Every raw message sent 3 times, versions of each document in reverse order.

The newest version arrives first; older ones follow, each three times. A watcher polls the
collection during the whole run: no point of an older version may ever be visible, not only
at the end. Afterwards `verify` (the invariant checker) reports no drift.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

pytestmark = pytest.mark.integration

N_DOCS = 30
VERSIONS = (3, 2, 1)  # newest first
COPIES = 3


def text_for(i: int, version: int) -> str:
    return f"Document {i}, version {version}. " + " ".join(f"t{(i * 13 + j * version) % 89}" for j in range(260))


async def test_duplicates_and_reverse_versions_never_reach_the_index(pipeline: Any) -> None:
    seen: set[tuple[str, int]] = set()
    polls = 0
    stale_sent = N_DOCS * (len(VERSIONS) - 1) * COPIES

    async def watch() -> None:
        nonlocal polls
        while True:
            with contextlib.suppress(AssertionError):
                seen.update((pt["doc_id"], pt["version"]) for pt in await pipeline.points("acme"))
                polls += 1
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch())
    try:
        async with pipeline.producer() as p:
            for version in VERSIONS:
                for i in range(N_DOCS):
                    for _ in range(COPIES):
                        await p.upsert("acme", f"doc-{i}", text_for(i, version), version=version)

        async def drained() -> bool:
            return await pipeline.holds_exactly("acme", {(f"doc-{i}", 3) for i in range(N_DOCS)})

        await pipeline.wait_for(drained, timeout=400, what="every document at version 3")

        async def all_stale_counted() -> bool:
            return await pipeline.metric("rag_stale_writes_dropped_total") >= stale_sent

        await pipeline.wait_for(all_stale_counted, timeout=120, what="every older version to be dropped")
    finally:
        watcher.cancel()

    assert polls > 10  # the watcher really looked during the run
    assert {version for _, version in seen} == {3}, sorted(v for v in seen if v[1] != 3)[:10]
    # dropped once each, at the first stage; nothing stale travelled further
    assert await pipeline.metric("rag_stale_writes_dropped_total") == stale_sent
    code, report = await pipeline.verify("acme")
    assert code == 0, report
