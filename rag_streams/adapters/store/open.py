"""Which ``VectorStore`` a process opens, and the move from the old embedded store.

- ``RAG_VECTOR_STORE=module:callable``: whatever that returns (tests inject outages with it);
- ``RAG_QDRANT_URL``: a Qdrant server through qdrant-client;
- otherwise the embedded Qdrant Edge store at ``RAG_QDRANT_PATH`` (default
  ``{RAG_DATA_DIR}/qdrant-edge``).

Before Edge, the embedded store was qdrant-client's local mode (``{RAG_DATA_DIR}/qdrant``, a
``meta.json`` and ``collection/`` folders). Opening the embedded store while such a directory
holds collections and the Edge store has none refuses with one line that says to run
``rag-streams migrate-store``, which copies every collection's points, vectors included, and its
alias into Edge (no re-embedding) and renames the old directory ``qdrant.migrated``.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

from rag_streams.adapters.store.base import Point, VectorStore
from rag_streams.adapters.store.edge import EdgeVectorStore
from rag_streams.errors import RagError
from rag_streams.settings import Settings

__all__ = ["LegacyStoreFound", "legacy_local_store", "migrate_local_store", "open_store"]


class LegacyStoreFound(RagError):
    """The embedded store is still in qdrant-client's local-mode format."""

    code = "legacy_store"


def open_store(settings: Settings) -> VectorStore:
    if settings.vector_store is not None:
        module, _, name = settings.vector_store.partition(":")
        store: VectorStore = getattr(importlib.import_module(module), name)(settings)
        return store
    if settings.qdrant_url:
        from rag_streams.adapters.store.qdrant import QdrantVectorStore  # qdrant-client: ~2 s to import, server only

        return QdrantVectorStore.connect(
            url=settings.qdrant_url,
            path=None,
            api_key=settings.qdrant_api_key,
            prefix=settings.collection_prefix,
            quantization=settings.quantization,
        )
    legacy = legacy_local_store(settings)
    if legacy is not None:
        raise LegacyStoreFound(
            f"{legacy} holds collections in the old embedded format (qdrant-client local mode); "
            "run `rag-streams migrate-store` once to copy them into the Qdrant Edge store"
        )
    return _edge(settings)


def _edge(settings: Settings) -> EdgeVectorStore:
    return EdgeVectorStore.open(
        settings.qdrant_location,
        prefix=settings.collection_prefix,
        index_threshold=settings.edge_index_threshold,
        quantization=settings.quantization,
    )


def _local_mode_collections(folder: Path) -> list[str]:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return []
    return sorted(meta.get("collections", {})) if isinstance(meta, dict) else []


def legacy_local_store(settings: Settings) -> Path | None:
    """The old local-mode directory, when it has collections and the Edge store has none."""
    edge = settings.qdrant_location
    if edge.is_dir() and any(edge.glob("*.alias")):
        return None
    for folder in dict.fromkeys([settings.data_dir / "qdrant", edge]):
        if _local_mode_collections(folder):
            return folder
    return None


def migrate_local_store(settings: Settings, *, out: Any = print) -> int:
    """Copy every collection of the local-mode store into Edge; return the number of points copied."""
    from qdrant_client import QdrantClient

    legacy = legacy_local_store(settings)
    if legacy is None:
        out("nothing to migrate: no local-mode store with collections, or the Edge store already has some")
        return 0
    if legacy == settings.qdrant_location:
        raise LegacyStoreFound(
            f"{legacy} is both the old store and RAG_QDRANT_PATH: point RAG_QDRANT_PATH at a new directory first"
        )
    client = QdrantClient(path=str(legacy))
    edge = _edge(settings)
    pattern = re.compile(re.escape(settings.collection_prefix) + r"_(.+)__v(\d+)")
    copied = 0
    try:
        aliases = {a.collection_name: a.alias_name for a in client.get_aliases().aliases}
        for name in _local_mode_collections(legacy):
            match = pattern.fullmatch(name)
            if match is None:
                out(f"skipped {name}: not a rag-streams collection of prefix {settings.collection_prefix!r}")
                continue
            tenant, generation = match.group(1), int(match.group(2))
            meta = client.get_collection(name).config.metadata or {}
            dim, model = int(meta.get("dim", 0)), str(meta.get("model", ""))
            copied += edge.copy_in(tenant, generation, dim, model, meta.get("source"), _scroll(client, name))
            if name in aliases:
                edge.set_alias(tenant, name)
            out(f"copied {name}")
    finally:
        client.close()
        edge.close_now()
    legacy.rename(legacy.with_name(legacy.name + ".migrated"))
    out(f"migrated {copied} points into {settings.qdrant_location}; the old store is now {legacy.name}.migrated")
    return copied


def _scroll(client: Any, name: str) -> list[Point]:
    out: list[Point] = []
    offset = None
    while True:
        batch, offset = client.scroll(name, limit=1000, offset=offset, with_payload=True, with_vectors=True)
        out += [Point(str(p.id), list(p.vector), dict(p.payload or {})) for p in batch]
        if offset is None:
            return out
