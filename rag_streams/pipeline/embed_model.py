"""Running the embedding model on a batch: its busy time exported, transient errors retried, and
the chunks it fails on for good isolated so only they are dead-lettered."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rag_streams.adapters.embedding import Embedder, to_bytes
from rag_streams.errors import PermanentError, retry_transient
from rag_streams.observability import metrics

__all__ = ["embed", "embed_isolating"]
log = logging.getLogger(__name__)
STAGE = "embed"
RunModel = Callable[..., Awaitable[Any]]


async def embed(run_model: RunModel, embedder: Embedder, texts: list[str]) -> list[bytes]:
    started = time.perf_counter()
    try:
        array = await retry_transient(run_model, embedder.embed, texts, what="embed")
    finally:
        metrics.embed_model_seconds_total.inc(time.perf_counter() - started)
    return [to_bytes(row) for row in array]


async def embed_isolating(
    run_model: RunModel, embedder: Embedder, texts: list[str]
) -> tuple[dict[int, bytes], dict[int, PermanentError]]:
    """Embed a batch; if the model fails on it for good, embed chunk by chunk so only the chunks
    it fails on are returned as failed (by position), the rest with their vectors."""
    try:
        return dict(enumerate(await embed(run_model, embedder, texts))), {}
    except Exception as exc:  # any model error: find the chunks it belongs to
        log.exception("embedding a batch of %d failed; embedding one by one", len(texts), extra={"stage": STAGE})
        if len(texts) == 1:
            return {}, {0: PermanentError(f"embedding failed: {type(exc).__name__}: {exc}")}
    vectors: dict[int, bytes] = {}
    failed: dict[int, PermanentError] = {}
    for i, text in enumerate(texts):
        try:
            vectors[i] = (await embed(run_model, embedder, [text]))[0]
        except Exception as exc:  # this chunk's own failure
            log.exception("embedding chunk %d of the batch failed", i, extra={"stage": STAGE})
            failed[i] = PermanentError(f"embedding failed: {type(exc).__name__}: {exc}")
    return vectors, failed
