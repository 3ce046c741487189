"""Running the embedding model on a batch: its busy time exported, transient errors retried, and
the chunks it fails on for good isolated so only they are dead-lettered."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from types import TracebackType
from typing import Any

from rag_streams.adapters.embedding import Embedder, to_bytes
from rag_streams.errors import PermanentError, retry_transient
from rag_streams.observability import metrics

__all__ = ["ModelBatches", "embed", "embed_isolating"]
log = logging.getLogger(__name__)
STAGE = "embed"
RunModel = Callable[..., Awaitable[Any]]


def _timed(fn: Callable[[list[str]], Any], texts: list[str]) -> Any:
    """``fn(texts)`` on the model thread, its time exported: the time the model ran, not the time a
    batch waited for the thread behind others (see ModelBatches)."""
    started = time.perf_counter()
    try:
        return fn(texts)
    finally:
        metrics.embed_model_seconds_total.inc(time.perf_counter() - started)


async def embed(run_model: RunModel, embedder: Embedder, texts: list[str]) -> list[bytes]:
    array = await retry_transient(run_model, _timed, embedder.embed, texts, what="embed")
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


Result = tuple[bytes | None, PermanentError | None]


class ModelBatches:
    """The model batches of one take, queued on the model thread at once and read back in order.

    The thread runs them back to back while the event loop sends the outputs of those done, so under
    a backlog the model does not wait for the sends between its batches (the take's gap remains).
    Leaving the block cancels what was not read (a failed send: the take is redelivered)::

        async with ModelBatches(services.run_model) as model:
            model.submit(embedder, positions, texts)   # one model batch, positions in the take
            vector, error = await model.result(position)
    """

    def __init__(self, run_model: RunModel) -> None:
        self._run_model = run_model
        self._batches: list[asyncio.Task[tuple[dict[int, bytes], dict[int, PermanentError]]]] = []
        self._where: dict[int, tuple[int, int]] = {}  # position -> (batch, index in the batch)

    def submit(self, embedder: Embedder, positions: Sequence[int], texts: list[str], *, span: Any = None) -> None:
        """Queue one model batch (``texts`` of the take's ``positions``); ``span``: a context manager
        around its model call (a trace span)."""
        batch = len(self._batches)
        self._where.update({pos: (batch, i) for i, pos in enumerate(positions)})
        metrics.embed_batch_size.observe(len(texts))
        self._batches.append(asyncio.ensure_future(self._run(embedder, texts, span)))

    async def _run(
        self, embedder: Embedder, texts: list[str], span: Any
    ) -> tuple[dict[int, bytes], dict[int, PermanentError]]:
        with span or nullcontext():
            return await embed_isolating(self._run_model, embedder, texts)

    async def result(self, position: int) -> Result:
        """The vector of the take's ``position``, or the model's permanent error on it."""
        batch, i = self._where[position]
        vectors, failed = await self._batches[batch]
        return vectors.get(i), failed.get(i)

    async def __aenter__(self) -> ModelBatches:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pending = [t for t in self._batches if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
