"""``rag-streams backup --tenant T --to DIR`` and ``rag-streams restore --from DIR``: the I/O around
``backup.py`` (files, consistency rule). Both reach the store the way ``reindex`` does: Qdrant itself,
else the index worker's admin API (it holds the embedded store), else the embedded store on disk.

A restore loads the saved vectors into a new generation (no model run), then reuses reindex's
replay from the backup's recorded offsets: it catches up, flips the alias and applies the tail.
Replayed chunks whose text is in the backup take the saved vector; only new text is embedded.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, cast

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from rag_streams.adapters.backup import (
    META_FILE,
    POINTS_FILE,
    BackupMeta,
    PointsWriter,
    read_hashes,
    read_meta,
    read_points,
    read_vectors,
    recorded_offsets,
)
from rag_streams.adapters.kafka_admin import committed_reader, topic_partitions
from rag_streams.adapters.store.base import Collection, Collections, Point
from rag_streams.commands.pacing import Pacer
from rag_streams.commands.reindex import _open, _Reindex
from rag_streams.errors import CliError, retry_transient
from rag_streams.pipeline.topics import TopicNames
from rag_streams.rules.records import MAX_VERSION, TENANT_RE, Chunk
from rag_streams.settings import Settings

__all__ = ["backup", "restore"]

PAGE = 1000  # points per export page


class Exporting(Collections, Protocol):
    async def export(
        self, tenant: str, collection: str | None = None, *, offset: str | None = None, limit: int = 1000
    ) -> tuple[list[Point], str | None]: ...


async def backup(settings: Settings, tenant: str, folder: Path, api_key: str | None) -> int:
    if not TENANT_RE.fullmatch(tenant):
        raise CliError(f"--tenant: {tenant!r} does not match {TENANT_RE.pattern}")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise CliError(f"--to: {folder} exists and is not an empty folder")
    topic = TopicNames.for_prefix(settings.topic_prefix).latest
    parts = await topic_partitions(settings, topic)
    target, where = await _open(settings, tenant, api_key)
    try:
        current = next((c for c in await target.collections(tenant) if c.aliased), None)
        if current is None:
            raise CliError(f"tenant {tenant} has no collection: nothing to back up")
        consumer = committed_reader(settings)
        await consumer.start()
        try:
            consumer.assign(parts)
            ends = {tp.partition: o for tp, o in (await consumer.end_offsets(parts)).items()}  # O, before the scan
            folder.mkdir(parents=True, exist_ok=True)
            writer = PointsWriter(folder, current.dim)
            try:
                await _scan(cast(Exporting, target), tenant, current.name, writer)
            finally:
                writer.close()
            offsets = await _lowered(consumer, parts, ends, tenant, writer)
        finally:
            await consumer.stop()
    except BaseException:
        (folder / POINTS_FILE).unlink(missing_ok=True)
        raise
    finally:
        await target.close()
    meta = _meta(settings, tenant, current, topic, ends, offsets, writer)
    (folder / META_FILE).write_text(
        orjson.dumps(meta.to_json(), option=orjson.OPT_INDENT_2).decode()
    )  # last: now it is a backup
    print(
        f"backed up tenant {tenant}: {meta.points} point(s), {meta.documents} document(s) of {current.name} "
        f"(model {current.model}, dim {current.dim}, through {where}) to {folder}; "
        f"replay from {_fmt(offsets)} (end {_fmt(ends)})"
    )
    return 0


def _fmt(offsets: dict[int, int]) -> str:
    return ", ".join(f"{p}:{o}" for p, o in sorted(offsets.items()))


async def _scan(target: Exporting, tenant: str, name: str, writer: PointsWriter) -> None:
    offset: str | None = None
    while True:
        page, offset = await retry_transient(
            target.export, tenant, name, offset=offset, limit=PAGE, what="export points"
        )
        await asyncio.to_thread(writer.write, page)
        if offset is None:
            return


async def _lowered(
    consumer: AIOKafkaConsumer,
    parts: list[TopicPartition],
    ends: dict[int, int],
    tenant: str,
    writer: PointsWriter,
) -> dict[int, int]:
    """The records below ``ends``, read now, lower the offsets where the points lack their effect."""
    await consumer.seek_to_beginning(*parts)
    offsets = dict(ends)
    while [tp for tp in parts if await consumer.position(tp) < ends[tp.partition]]:
        batch = await consumer.getmany(*parts, timeout_ms=1000)
        rows = [
            (r.partition, r.offset, r.key, r.value, r.headers)
            for records in batch.values()
            for r in records
            if r.offset < ends[r.partition]
        ]
        offsets = recorded_offsets(offsets, rows, tenant, writer.presence)
    return offsets


def _meta(
    settings: Settings,
    tenant: str,
    current: Collection,
    topic: str,
    ends: dict[int, int],
    offsets: dict[int, int],
    writer: PointsWriter,
) -> BackupMeta:
    return BackupMeta(
        tenant=tenant,
        collection=current.name,
        generation=current.generation,
        model=current.model,
        source=current.source,
        dim=current.dim,
        distance="cosine",
        chunk_tokens=settings.chunk_tokens,
        chunk_overlap=settings.chunk_overlap,
        topic=topic,
        offsets=offsets,
        end_offsets=ends,
        points=writer.count,
        documents=len(writer.presence.complete),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        lowered={p: ends[p] - o for p, o in offsets.items() if o < ends[p]},
    )


async def restore(settings: Settings, folder: Path, api_key: str | None) -> int:
    meta = read_meta(folder)
    topic = TopicNames.for_prefix(settings.topic_prefix).latest
    if meta.topic != topic:
        raise CliError(f"the backup replays {meta.topic}, this deployment's latest topic is {topic} (RAG_TOPIC_PREFIX)")
    if (meta.chunk_tokens, meta.chunk_overlap) != (settings.chunk_tokens, settings.chunk_overlap):
        raise CliError(
            f"the backup was chunked with RAG_CHUNK_TOKENS={meta.chunk_tokens} RAG_CHUNK_OVERLAP={meta.chunk_overlap}, "
            f"this deployment uses {settings.chunk_tokens}/{settings.chunk_overlap}"
        )
    target, where = await _open(settings, meta.tenant, api_key)
    job = _Restore(settings, meta.tenant, target, where, Pacer())  # restore is not paced
    try:
        return await job.restore(folder, meta)
    finally:
        await target.close()
        if (cache := job.services.cache()) is not None:
            await cache.close()


class _Restore(_Reindex):
    async def restore(self, folder: Path, meta: BackupMeta) -> int:
        existing = await self.target.collections(self.tenant)
        current = next((c for c in existing if c.aliased), None)
        if current is not None and (current.model, current.dim) != (meta.model, meta.dim):
            raise CliError(
                f"tenant {self.tenant}'s collection {current.name} holds {current.model} ({current.dim} dims), "
                f"the backup {meta.model} ({meta.dim} dims): reindex the tenant to the backup's model first"
            )
        model = await self.services.embedder(meta.source)  # loaded, not run: only new text is embedded
        if (model.model_name, model.dim) != (meta.model, meta.dim):
            raise CliError(
                f"the backup holds {meta.model} ({meta.dim} dims) but its model source "
                f"{meta.source or 'RAG_EMBED_MODEL'} loads {model.model_name} ({model.dim} dims)"
            )
        self.embedder, self.tokenizer = model, await self.services.embedder()
        self.folder, self.embedded, self.reused = folder, 0, 0
        generation = max((c.generation for c in existing), default=0) + 1
        new = await retry_transient(
            self.target.create_generation,
            self.tenant,
            generation,
            meta.dim,
            meta.model,
            meta.source,
            what="create collection",
        )
        self.collection = new.name
        print(
            f"restore {self.tenant}: loading {meta.points} point(s) into {new.name} (through {self.where})",
            file=sys.stderr,
        )
        loaded = await self._load(folder)
        self.hashes = await asyncio.to_thread(read_hashes, folder)
        group = f"{self.settings.app_id}-restore-{self.tenant}-v{generation}"
        await self._start_at(group, meta)
        await self._replay(group, flipped=False)  # catch up from the recorded offsets, flip, tail
        drop = [c.name for c in existing]
        if drop and self.settings.reindex_grace_s:
            print(f"keeping the old collection {self.settings.reindex_grace_s:g} s (grace)", file=sys.stderr)
            await asyncio.sleep(self.settings.reindex_grace_s)
        for name in drop:
            await retry_transient(self.target.drop_collection, self.tenant, name, what="drop collection")
        dropped = f"; dropped {', '.join(drop)}" if drop else ""
        print(
            f"restored tenant {self.tenant} into {new.name}: {loaded} point(s) from the backup, "
            f"catch-up reused {self.reused} and embedded {self.embedded} chunk(s){dropped}"
        )
        if self.bad:
            print(f"rag-streams: {self.bad} record(s) of the latest topic could not be decoded", file=sys.stderr)
        return 0

    async def _load(self, folder: Path) -> int:
        """The saved points into the new generation as they are (it is not aliased: no one else writes it)."""
        loaded, batches = 0, read_points(folder, self.max_batch)
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            await self.limiter.acquire(len(batch))
            await retry_transient(
                self.target.upsert,
                self.tenant,
                batch,
                version=MAX_VERSION,
                same_version=True,
                collection=self.collection,
                what="restore upsert",
            )
            loaded += len(batch)
        return loaded

    async def _start_at(self, group: str, meta: BackupMeta) -> None:
        """The replay's consumer group starts at the backup's recorded offsets."""
        parts = await topic_partitions(self.settings, meta.topic)
        consumer = committed_reader(self.settings, group)
        await consumer.start()
        try:
            consumer.assign(parts)
            await consumer.commit({tp: meta.offsets[tp.partition] for tp in parts if tp.partition in meta.offsets})
        finally:
            await consumer.stop()

    async def _vectors(self, chunks: list[Chunk]) -> list[Any]:
        """The backup's vector where the chunk's text is in it, the model's for the rest."""
        same = [c.chunk_id for c in chunks if c.chunk_id in self.hashes and self.hashes[c.chunk_id] == c.content_hash]
        saved = await asyncio.to_thread(read_vectors, self.folder, same)
        need = [c for c in chunks if c.chunk_id not in saved]
        fresh = iter(await super()._vectors(need))
        self.reused += len(chunks) - len(need)
        self.embedded += len(need)
        return [saved[c.chunk_id] if c.chunk_id in saved else next(fresh) for c in chunks]
