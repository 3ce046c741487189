"""Deterministic identities: the same chunk slot always maps to the same Qdrant point."""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["collection_alias", "collection_name", "content_hash", "point_id"]

#: Fixed namespace of rag-streams point ids (uuid5). Changing it would orphan every point.
NAMESPACE = uuid.UUID("6f1d2c3e-8b4a-5e6f-9a0b-1c2d3e4f5a6b")


def point_id(tenant_id: str, doc_id: str, chunk_index: int) -> str:
    """uuid5 of ``tenant/doc_id/chunk_index``: a new version of a chunk slot overwrites its point."""
    return str(uuid.uuid5(NAMESPACE, f"{tenant_id}/{doc_id}/{chunk_index}"))


def content_hash(text: str) -> str:
    """sha256 of the chunk text (hex): equal hashes mean the embedding can be reused."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def collection_alias(prefix: str, tenant_id: str) -> str:
    """The name queries use: ``{prefix}_{tenant}``, an alias of the current physical collection."""
    return f"{prefix}_{tenant_id}"


def collection_name(prefix: str, tenant_id: str, generation: int) -> str:
    """A physical collection: ``{prefix}_{tenant}__v{n}``; reindex builds n+1 and flips the alias."""
    return f"{collection_alias(prefix, tenant_id)}__v{generation}"
