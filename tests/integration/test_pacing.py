"""Bulk pacing on the real broker, worker, model and embedded store: `publish` and `reindex` with
`--rate` and `--window`, and the exact commands of the Airflow DAG in deploy/airflow/.

Windows here open a few seconds after the test starts (HH:MM:SS, RAG_WINDOW_TIMEZONE=UTC), so a
pause and its resume both happen within the test.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shlex
import subprocess
import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from rag_streams.adapters.codecs import RAW
from rag_streams.rules.reindex import consumer_group

pytestmark = pytest.mark.integration

DAG_FILE = Path(__file__).resolve().parents[2] / "deploy" / "airflow" / "rag_streams_nightly_reindex.py"


def load_dag() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rag_streams_nightly_reindex", DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Cli:
    """A `rag-streams` command running as its own process; stderr lines collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc, self.err, self.out = proc, [], b""
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, pipeline: Any, argv: list[str], **env: str) -> Cli:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env={**pipeline.env, "RAG_REINDEX_GRACE_S": "0", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stderr is not None and self.proc.stdout is not None
        out = asyncio.create_task(self.proc.stdout.read())
        async for line in self.proc.stderr:
            self.err.append(line.decode(errors="replace").rstrip())
        self.out = await out

    def said(self, text: str) -> bool:
        return any(text in line for line in self.err)

    async def finish(self, timeout: float = 300) -> tuple[int, str]:
        await asyncio.wait_for(self._reader, timeout)
        code = await self.proc.wait()
        return code, self.out.decode(errors="replace") + "\n".join(self.err)


def window_opening_in(seconds: float) -> tuple[str, datetime]:
    """A UTC window that opens ``seconds`` from now and lasts an hour."""
    start = (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)
    return f"{start:%H:%M:%S}-{start + timedelta(hours=1):%H:%M:%S}", start


async def raw_docs(pipeline: Any, tenant: str, *, bulk: bool = False) -> list[Any]:
    topic = pipeline.topics.raw_bulk if bulk else pipeline.topics.raw
    docs = [RAW.decode(r.value) for r in await pipeline.read_topic(topic)]
    return [d for d in docs if d.tenant_id == tenant]


async def wait_indexed(pipeline: Any, tenant: str, doc_ids: set[str]) -> list[dict[str, Any]]:
    async def indexed() -> bool:
        return {pt["doc_id"] for pt in await pipeline.points(tenant)} == doc_ids

    await pipeline.wait_for(indexed, timeout=240, what=f"{tenant}'s documents indexed")
    return await pipeline.points(tenant)


def write_notes(folder: Path, n: int, topic: str) -> dict[str, str]:
    folder.mkdir()
    notes = {f"note-{i:02d}.txt": f"Note {i} about {topic}: item number {i} of the {topic} series." for i in range(n)}
    for name, text in notes.items():
        (folder / name).write_text(text)
    return notes


async def test_publish_rate_and_window_send_every_file_once_and_only_inside_the_window(
    pipeline: Any, tmp_path: Path
) -> None:
    # --rate 5: ten files, all sent, each once, at most 5 per second
    notes = write_notes(tmp_path / "rated", 10, "glaciers")
    started = time.monotonic()
    cli = await Cli.start(
        pipeline, ["rag-streams", "publish", "--tenant", "rated", "--rate", "5", str(tmp_path / "rated")]
    )
    code, out = await cli.finish()
    assert code == 0 and "published 10 document(s) for tenant rated" in out, out
    sent = await raw_docs(pipeline, "rated")
    assert sorted(d.doc_id for d in sent) == sorted(notes)  # none lost, none twice
    produced = sorted(d.produced_at for d in sent)
    assert produced[-1] - produced[0] >= 9 * 200 - 50, produced  # 10 sends at 5/s span >= 1.8 s (ms clock)
    points = await wait_indexed(pipeline, "rated", set(notes))
    assert len({(p["doc_id"], p["version"]) for p in points}) == 10
    print(f"publish --rate 5: 10 files in {time.monotonic() - started:.1f} s")

    # --window opening in ~8 s: nothing is published before it opens, everything after
    notes = write_notes(tmp_path / "windowed", 5, "lighthouses")
    window, opens = window_opening_in(8)
    argv = ["rag-streams", "publish", "--tenant", "windowed", "--window", window, str(tmp_path / "windowed")]
    cli = await Cli.start(pipeline, argv, RAG_WINDOW_TIMEZONE="UTC")

    async def paused() -> bool:
        return cli.said(f"outside the window {window}")

    await pipeline.wait_for(paused, timeout=30, what="publish to pause outside the window")
    while datetime.now(UTC) < opens - timedelta(seconds=1.5):
        await asyncio.sleep(0.5)
    assert cli.proc.returncode is None, cli.err
    assert await raw_docs(pipeline, "windowed") == []  # closed: not one document sent
    assert await pipeline.points("windowed") == []
    code, out = await cli.finish()
    assert code == 0 and "published 5 document(s) for tenant windowed" in out, out
    assert cli.said(f"window {window} open: resuming"), cli.err
    sent = await raw_docs(pipeline, "windowed")
    assert sorted(d.doc_id for d in sent) == sorted(notes)
    assert min(d.produced_at for d in sent) >= opens.timestamp() * 1000
    await wait_indexed(pipeline, "windowed", set(notes))
    results = await pipeline.search("windowed", "Note 3 about lighthouses", k=1)
    assert results and results[0]["doc_id"] == "note-03.txt"

    # --bulk (RAG_BULK_LANE on, the default): to the bulk lane's topic, indexed like any other
    notes = write_notes(tmp_path / "bulk", 3, "canals")
    cli = await Cli.start(pipeline, ["rag-streams", "publish", "--tenant", "bulky", "--bulk", str(tmp_path / "bulk")])
    code, out = await cli.finish()
    assert code == 0 and "published 3 document(s) for tenant bulky" in out, out
    assert sorted(d.doc_id for d in await raw_docs(pipeline, "bulky", bulk=True)) == sorted(notes)
    assert await raw_docs(pipeline, "bulky") == []
    await wait_indexed(pipeline, "bulky", set(notes))


def some_docs(offset: int) -> dict[str, str]:
    folder = resources.files("rag_streams") / "sample_corpus"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".md"))[offset : offset + 6]
    return {name: (folder / name).read_text()[:600] for name in names}


async def collections(pipeline: Any, tenant: str) -> list[tuple[str, bool]]:
    status, body = await pipeline.api("GET", f"/v1/tenants/{tenant}/collections")
    assert status == 200, body
    return [(c["name"], c["aliased"]) for c in body["collections"]]


async def test_reindex_paced_in_a_window_and_the_nightly_dag_commands(pipeline: Any) -> None:
    dag = load_dag()
    tenants = list(dag.TENANTS)
    assert dag.commands() == [
        ["rag-streams", "reindex", "--tenant", t, "--rate", "200", "--window", "01:00-05:00"] for t in tenants
    ]
    docs = {tenant: some_docs(6 * i) for i, tenant in enumerate(tenants)}
    async with pipeline.producer() as p:
        for tenant, mine in docs.items():
            for doc_id, text in mine.items():
                await p.upsert(tenant, doc_id, text, version=1)
    for tenant, mine in docs.items():
        await wait_indexed(pipeline, tenant, set(mine))
    first = tenants[0]

    # the DAG's own first command, outside its 01:00-05:00 window, pauses before touching anything
    local_now = datetime.now().astimezone()
    if dag.WINDOW and local_now.hour not in range(1, 5):
        cli = await Cli.start(pipeline, shlex.split(shlex.join(dag.commands()[0])))

        async def waiting() -> bool:
            return cli.said(f"outside the window {dag.WINDOW}")

        await pipeline.wait_for(waiting, timeout=60, what="the DAG's reindex to wait for its window")
        assert cli.proc.returncode is None
        cli.proc.terminate()
        await cli.finish()
        assert await collections(pipeline, first) == [(f"rag_{first}__v1", True)]

    # --rate 1 --window opening in ~8 s: nothing created before it opens, then one document a second
    window, opens = window_opening_in(8)
    argv = ["rag-streams", "reindex", "--tenant", first, "--rate", "1", "--window", window]
    cli = await Cli.start(pipeline, argv, RAG_WINDOW_TIMEZONE="UTC")
    group = consumer_group(pipeline.settings.app_id, first, 2)
    progress: list[tuple[float, int]] = []
    while cli.proc.returncode is None:
        if datetime.now(UTC) < opens - timedelta(seconds=1):
            assert await collections(pipeline, first) == [(f"rag_{first}__v1", True)]
        done = await pipeline.committed_offsets(group)
        if not progress or progress[-1][1] != done:
            progress.append((time.monotonic(), done))
        await asyncio.sleep(0.25)
    code, out = await cli.finish()
    assert code == 0, out
    assert cli.said(f"outside the window {window}") and cli.said(f"window {window} open: resuming"), out
    assert await collections(pipeline, first) == [(f"rag_{first}__v2", True)]
    moved = [(t, n) for t, n in progress if n > 0]
    # six of this tenant's documents at 1/s: the replay's commits spread over >= 5 s (one batch, unpaced)
    assert moved and moved[-1][0] - moved[0][0] >= 3.0, progress

    # the DAG's commands for every tenant, with a window open now (local time, as the DAG's)
    now = datetime.now().astimezone()
    open_now = f"{now - timedelta(minutes=1):%H:%M}-{now + timedelta(hours=2):%H:%M}"
    for tenant, argv in zip(tenants, dag.commands(window=open_now), strict=True):
        cli = await Cli.start(pipeline, shlex.split(shlex.join(argv)))
        code, out = await cli.finish()
        generation = 3 if tenant == first else 2
        assert code == 0 and f"reindexed tenant {tenant} into rag_{tenant}__v{generation}" in out, out
        assert await collections(pipeline, tenant) == [(f"rag_{tenant}__v{generation}", True)]
        assert (await pipeline.verify(tenant))[0] == 0
        hits = await pipeline.search(tenant, next(iter(docs[tenant].values()))[:200], k=3)
        assert hits and {h["doc_id"] for h in hits} <= set(docs[tenant])
