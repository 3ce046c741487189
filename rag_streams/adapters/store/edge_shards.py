"""The embedded store's open shards, and their HNSW index built beside the worker.

Edge is a library, not a server: it has no background optimizer, and ``EdgeShard.optimize()``
holds the GIL until the HNSW graph is built (tens of seconds at 100k points on 2 cores), which
would freeze the event loop and Faust's consumer thread. So the index is built in a child
process on a copy: the live shard is flushed and copied, ``python -m rag_streams.adapters.store.edge_optimize``
optimizes the copy, the writes made meanwhile are replayed onto it, and ``collection.json`` is
switched to it. Queries and writes keep going to the live shard the whole time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from qdrant_edge import EdgeShard, UpdateOperation

from rag_streams.errors import TransientError

__all__ = ["EdgeIndexBuilds", "StoreLocked"]

log = logging.getLogger(__name__)
T = TypeVar("T")
META = "collection.json"


class StoreLocked(TransientError):
    """Another process has the embedded store open."""


@dataclass
class _Open:
    """A collection's live shard, and the writes to replay onto the copy being optimized."""

    shard: EdgeShard
    folder: str  # shard directory name inside the collection directory
    unindexed: int = 0  # points written since the last index build started
    journal: list[UpdateOperation] | None = None  # not None while an index build is running
    build: asyncio.Task[None] | None = field(default=None, repr=False)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EdgeIndexBuilds:
    """Background HNSW builds of a store's collections (the base of ``EdgeCollections``)."""

    root: Path
    _open: dict[str, _Open]
    _closed: bool
    _index_threshold: int

    async def _run(self, fn: Callable[[], T]) -> T:
        raise NotImplementedError

    def _meta(self, name: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def _maybe_build_index(self, name: str) -> None:
        handle = self._open.get(name)
        if handle and handle.build is None and handle.unindexed >= self._index_threshold and not self._closed:
            handle.build = asyncio.get_running_loop().create_task(self._build_index(name, handle))

    async def build_indexes(self) -> None:
        """Build the HNSW index of every open collection with unindexed points, and wait (bench, tests)."""
        for _ in range(3):  # a build already running when called leaves the points written since it began
            for name, handle in list(self._open.items()):
                if handle.build is None and handle.unindexed > 0:
                    handle.build = asyncio.get_running_loop().create_task(self._build_index(name, handle))
            builds = [h.build for h in self._open.values() if h.build is not None]
            if not builds:
                return
            await asyncio.gather(*builds, return_exceptions=True)

    async def _build_index(self, name: str, handle: _Open) -> None:
        folder = self.root / name
        copy = f"shard-{int(handle.folder.split('-')[1]) + 1}"

        def snapshot() -> None:
            handle.shard.flush()
            shutil.rmtree(folder / copy, ignore_errors=True)
            shutil.copytree(folder / handle.folder, folder / copy)
            handle.journal, handle.unindexed = [], 0

        def swap() -> None:
            if self._open.get(name) is not handle:  # dropped or closed meanwhile
                shutil.rmtree(folder / copy, ignore_errors=True)
                return
            built = EdgeShard.load(str(folder / copy))
            for operation in handle.journal or []:
                built.update(operation)
            built.flush()
            meta = self._meta(name) or {}
            _write_atomically(folder / META, json.dumps({**meta, "shard": copy}))
            old, handle.shard, old_folder, handle.folder = handle.shard, built, handle.folder, copy
            handle.journal = None
            old.close()
            shutil.rmtree(folder / old_folder, ignore_errors=True)

        proc: asyncio.subprocess.Process | None = None
        try:
            await self._run(snapshot)
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "rag_streams.adapters.store.edge_optimize",
                str(folder / copy),
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"index build exited {proc.returncode}: {err.decode(errors='replace')[-500:]}")
            await self._run(swap)
            log.info("built the HNSW index of %s", name)
        except asyncio.CancelledError:
            if proc is not None and proc.returncode is None:
                proc.kill()
            self._abandon(handle, folder / copy)
            raise
        except Exception as exc:  # noqa: BLE001 - the live shard is untouched: searches stay exact, just slower
            log.warning("index build of %s failed, will retry after more writes: %s", name, exc)
            self._abandon(handle, folder / copy)
        finally:
            handle.build = None

    @staticmethod
    def _abandon(handle: _Open, copy: Path) -> None:
        if handle.folder != copy.name:
            handle.journal = None
            handle.unindexed += 1  # not built: try again after the next write
            shutil.rmtree(copy, ignore_errors=True)
