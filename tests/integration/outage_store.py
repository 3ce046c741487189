"""A VectorStore for RAG_VECTOR_STORE that stores batches until N points are in, then has a lasting
outage: writes fail (transient) and searches hang.

Used by the worker subprocess of test_offsets_after_ack.py: ``RAG_VECTOR_STORE=outage_store:build``
with ``RAG_TEST_OUTAGE_AFTER_POINTS=N`` (test code; the product never reads this variable).
``build_switched``: an outage for as long as a file exists (test_fallback.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag_streams.adapters.services import Services
from rag_streams.adapters.store.base import Point, VectorStore
from rag_streams.errors import TransientError
from rag_streams.settings import Settings


class OutageStore:
    def __init__(self, inner: VectorStore, limit: int) -> None:
        self._inner, self._limit, self.stored = inner, limit, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def upsert(self, tenant: str, points: Sequence[Point], *, version: int, same_version: bool = False) -> None:
        if self.stored >= self._limit:
            raise TransientError("injected vector store outage")
        await self._inner.upsert(tenant, points, version=version, same_version=same_version)
        self.stored += len(points)

    async def search(self, tenant: str, vector: Sequence[float], k: int, **kwargs: Any) -> Any:
        if self.stored >= self._limit:
            await asyncio.sleep(3600)  # a server that no longer answers
        return await self._inner.search(tenant, vector, k, **kwargs)


def build(settings: Settings) -> OutageStore:
    inner = Services(dataclasses.replace(settings, vector_store=None)).store()  # the real embedded Qdrant
    return OutageStore(inner, int(os.environ["RAG_TEST_OUTAGE_AFTER_POINTS"]))


class SwitchedOutageStore:
    """The real store, except while the file ``flag`` exists: then every call of it hangs (a
    server that no longer answers). ``RAG_VECTOR_STORE=outage_store:build_switched`` with
    ``RAG_TEST_OUTAGE_FILE=PATH`` (test_fallback.py)."""

    def __init__(self, inner: VectorStore, flag: Path) -> None:
        self._inner, self._flag = inner, flag

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self._flag.exists():
                await asyncio.sleep(3600)
            return await attr(*args, **kwargs)

        return call


def build_switched(settings: Settings) -> SwitchedOutageStore:
    inner = Services(dataclasses.replace(settings, vector_store=None)).store()
    return SwitchedOutageStore(inner, Path(os.environ["RAG_TEST_OUTAGE_FILE"]))
