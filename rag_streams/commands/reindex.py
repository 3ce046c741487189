"""``rag-streams reindex --tenant T [--model M]``: the Kafka replay around the rules in ``reindex.py``."""

from __future__ import annotations

import asyncio
import logging
import math
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import TopicPartition
from aiolimiter import AsyncLimiter
from tqdm import tqdm

from rag_streams.adapters.embedding import Embedder
from rag_streams.adapters.kafka_admin import committed_reader, topic_partitions
from rag_streams.adapters.reindex_remote import RemoteCollections
from rag_streams.adapters.services import MODEL_CACHE_S, Services
from rag_streams.adapters.store.base import Collection, Collections
from rag_streams.commands.pacing import Pacer
from rag_streams.errors import BadInput, CliError, TransientError, retry_transient
from rag_streams.pipeline.topics import TopicNames
from rag_streams.rules.chunking import chunk_document
from rag_streams.rules.records import TENANT_RE, Chunk, RawDocument
from rag_streams.rules.reindex import (
    DocAction,
    caught_up,
    chase_more,
    collapse,
    consumer_group,
    plan_resume,
    points_of,
)
from rag_streams.settings import Settings

__all__ = ["reindex"]
log = logging.getLogger(__name__)


async def reindex(
    settings: Settings, tenant: str, model: str | None, api_key: str | None, pacer: Pacer | None = None
) -> int:
    if not TENANT_RE.fullmatch(tenant):
        raise CliError(f"--tenant: {tenant!r} does not match {TENANT_RE.pattern}")
    pacer = pacer or Pacer()
    await pacer.wait_for_window()  # nothing is created or read outside the window
    target, where = await _open(settings, tenant, api_key)
    job = _Reindex(settings, tenant, target, where, pacer)
    try:
        return await job.run(model)
    finally:
        await target.close()
        if (cache := job.services.cache()) is not None:
            await cache.close()


async def _open(settings: Settings, tenant: str, api_key: str | None) -> tuple[Collections, str]:
    """Qdrant itself when it is a server; else the index worker that holds the embedded store, else
    the embedded store on disk when no worker has it open."""
    services = Services(settings)
    if settings.qdrant_url is None and settings.vector_store is None:
        remote = RemoteCollections(settings, api_key)
        try:
            await remote.collections(tenant)
            return remote, f"the index worker at {settings.query_api_url}"
        except TransientError as exc:
            await remote.close()
            if not isinstance(exc.__cause__, aiohttp.ClientConnectionError):
                raise
    return services.store(), "Qdrant"


def _model_source(model: str) -> str:
    """A model directory is recorded as an absolute path (workers load it from their own cwd)."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


class _Reindex:
    def __init__(self, settings: Settings, tenant: str, target: Collections, where: str, pacer: Pacer) -> None:
        self.settings, self.tenant, self.target, self.where = settings, tenant, target, where
        self.pacer = pacer
        self.services = Services(settings)
        self.limiter = AsyncLimiter(settings.reindex_upsert_rate, 1.0)
        self.max_batch = max(1, int(settings.reindex_upsert_rate))
        self.bad = 0

    async def run(self, model: str | None) -> int:
        plan = plan_resume(await self.target.collections(self.tenant))
        if plan.flipped:
            new = plan.current
            note = f"finishing the interrupted reindex into {new.name} (alias already flipped)"
        else:
            source = _model_source(model) if model else (plan.existing or plan.current).source
            if plan.existing is not None and model and plan.existing.source != source:
                raise CliError(
                    f"an unfinished reindex into {plan.existing.name} uses model {plan.existing.source or 'default'}: "
                    "run it again with that --model (or none) to finish it first"
                )
            note = f"{'resuming' if plan.existing else 'building'} {plan.current.name} -> v{plan.generation}"
            new = plan.existing or await self._create(plan.generation, source)
        self.embedder: Embedder = await self.services.embedder(new.source)
        if self.embedder.dim != new.dim:
            raise CliError(f"{new.name} holds {new.dim}-dim vectors but model {new.model} gives {self.embedder.dim}")
        self.tokenizer = await self.services.embedder()  # the chunk stage's: the same chunks and point ids
        print(f"reindex {self.tenant}: {note} (model {new.model}, through {self.where})", file=sys.stderr)
        self.collection = new.name
        group = consumer_group(self.settings.app_id, self.tenant, new.generation)
        await self._replay(group, flipped=plan.flipped)
        if plan.drop and self.settings.reindex_grace_s:
            print(f"keeping the old collection {self.settings.reindex_grace_s:g} s (grace)", file=sys.stderr)
            await asyncio.sleep(self.settings.reindex_grace_s)
        for name in plan.drop:
            await retry_transient(self.target.drop_collection, self.tenant, name, what="drop collection")
        dropped = f"; dropped {', '.join(plan.drop)}" if plan.drop else ""
        print(f"reindexed tenant {self.tenant} into {new.name} (model {new.model}){dropped}")
        if self.bad:
            print(f"rag-streams: {self.bad} record(s) of the latest topic could not be decoded", file=sys.stderr)
        return 0

    async def _create(self, generation: int, source: str | None) -> Collection:
        emb = await self.services.embedder(source)
        return await retry_transient(
            self.target.create_generation,
            self.tenant,
            generation,
            emb.dim,
            emb.model_name,
            source,
            what="create collection",
        )

    async def _replay(self, group: str, *, flipped: bool) -> None:
        topic = TopicNames.for_prefix(self.settings.topic_prefix).latest
        consumer = committed_reader(self.settings, group)
        await consumer.start()
        try:
            parts = await topic_partitions(self.settings, topic)
            consumer.assign(parts)
            self.consumer, self.parts = consumer, parts
            self.positions = await self._positions()
            with tqdm(desc=f"reindex {self.tenant}", unit="msg", file=sys.stderr) as self.bar:
                if not flipped:
                    rounds = 0
                    while chase_more(rounds, self.positions, ends := await consumer.end_offsets(parts)):
                        await self._consume_until(ends, paced=True)
                        rounds += 1
                    await retry_transient(self.target.flip_alias, self.tenant, self.collection, what="flip alias")
                    tqdm.write(f"alias {self.tenant} -> {self.collection}", file=sys.stderr)
                    await self._answers_stale()  # they came from the old collection
                    await asyncio.sleep(MODEL_CACHE_S)  # embed stages still on the old model's lookup
                # the index stage wrote to the old collection until the flip: all of it is before these ends
                await self._consume_until(await consumer.end_offsets(parts))
                # Since the flip the live index stage writes to the new collection too, and a delete it
                # applied there before the tail wrote that document's older version left nothing for the
                # version guard to refuse: the tail resurrected it. Every delete since is applied again.
                await self._consume_until(await consumer.end_offsets(parts), deletes_only=True)
                await self._answers_stale()  # the tail's writes
        finally:
            await consumer.stop()

    async def _answers_stale(self) -> None:
        cache = self.services.cache()
        if cache is not None:
            await cache.written([self.tenant])

    async def _positions(self) -> dict[TopicPartition, int]:
        return {tp: await self.consumer.position(tp) for tp in self.parts}

    async def _consume_until(
        self, ends: dict[TopicPartition, int], *, deletes_only: bool = False, paced: bool = False
    ) -> None:
        """Apply the records up to ``ends``. ``paced`` (before the flip only): the pacer's rate and window
        hold each batch back; after the flip the tail is what the live collection lacks: never paused."""
        self.bar.total = (self.bar.n or 0) + sum(max(0, ends[tp] - self.positions[tp]) for tp in self.parts)
        self.bar.refresh()
        size = 4 * self.settings.embed_batch
        if paced and self.pacer.rate is not None:
            size = max(1, min(size, math.ceil(self.pacer.rate)))
        while not caught_up(self.positions, ends):
            batch = await self.consumer.getmany(*self.parts, timeout_ms=1000, max_records=size)
            actions, bad = collapse(
                ((r.key, r.value, r.headers) for records in batch.values() for r in records), self.tenant
            )
            self.bad += bad
            if paced and actions:  # positions are committed after _apply: a pause here loses nothing
                await self.pacer.acquire(len(actions))
            await self._apply([a for a in actions if a.doc is None] if deletes_only else actions)
            await self.consumer.commit()  # resumable: a restart continues from here
            before, self.positions = self.positions, await self._positions()
            self.bar.update(sum(self.positions[tp] - before[tp] for tp in self.parts))

    def _chunk(self, docs: list[RawDocument]) -> list[tuple[RawDocument, list[Chunk]]]:
        s, out = self.settings, []
        for doc in docs:
            try:
                out.append((doc, chunk_document(doc, self.tokenizer, size=s.chunk_tokens, overlap=s.chunk_overlap)))
            except BadInput as exc:  # the chunk stage refused it too (it never reached the latest topic)
                log.warning("%s v%d not reindexed: %s", doc.key, doc.version, exc)
        return out

    async def _vectors(self, chunks: list[Chunk]) -> list[Any]:
        """The chunks' vectors, in order (``restore`` reuses the backup's where it can)."""
        texts, vectors = [c.text for c in chunks], []
        for start in range(0, len(texts), self.settings.embed_batch):
            part = texts[start : start + self.settings.embed_batch]
            vectors += list(await asyncio.to_thread(self.embedder.embed, part))
        return vectors

    async def _apply(self, actions: list[DocAction]) -> None:
        chunked = await asyncio.to_thread(self._chunk, [a.doc for a in actions if a.doc is not None])
        vectors = await self._vectors([c for _, chunks in chunked for c in chunks])
        done = 0
        for doc, chunks in chunked:
            points = points_of(chunks, vectors[done : done + len(chunks)], self.embedder.model_name)
            done += len(chunks)
            for start in range(0, len(points), self.max_batch):
                part_points = points[start : start + self.max_batch]
                await self.limiter.acquire(len(part_points))
                await retry_transient(
                    self.target.upsert,
                    self.tenant,
                    part_points,
                    version=doc.version,
                    same_version=True,  # the new collection's own vectors win over a live write of the same version
                    collection=self.collection,
                    what="reindex upsert",
                )
            await retry_transient(
                self.target.trim_doc,
                self.tenant,
                doc.doc_id,
                version=doc.version,
                collection=self.collection,
                what="trim",
            )
        for a in actions:
            if a.doc is None:
                await retry_transient(
                    self.target.delete_doc,
                    self.tenant,
                    a.doc_id,
                    upto_version=a.deleted_upto,
                    collection=self.collection,
                    what="reindex delete",
                )
