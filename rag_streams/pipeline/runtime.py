"""One stage runtime: the ack, commit and dead-letter protocol every agent runs on.

An agent is decode -> pure rule -> emit over it::

    @app.agent(topic)
    async def my_stage(stream):
        await runtime.each(stream, handle)        # or runtime.batches(stream, handle_batch)

    async def handle(event):
        value = decode(event.message.value)      # PermanentError: dead-lettered by the runtime
        ...                                      # the pure rule
        async with runtime.emit(event):          # its sends and table rows: one transaction
            await out_topic.send(...)
            table[key] = row

A stage with a bulk lane (rag_streams.pipeline.lanes) runs a second agent on the bulk topic with
``lane="bulk"`` (and its first with ``lane="interactive"``): the runtime then takes the stage's
:class:`LaneGate` turn around each call and passes the lane, ``handle(event, lane)``.

The runtime owns the loop rather than handing out batches from a generator because the guard
against acking unfinished work (work-around 11, :mod:`rag_streams._faust.acks`) must surround the
*body* of the loop: an exception there never reaches a generator, only its suspension point.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, TypeVar

from rag_streams._faust.acks import ack_handled, redelivered_unless_done
from rag_streams._faust.commit_gate import emitting_for
from rag_streams._faust.compat import acting_on
from rag_streams.errors import PermanentError
from rag_streams.observability import metrics, stage_tracing
from rag_streams.pipeline.deadletter import dead_letter
from rag_streams.pipeline.lanes import LaneGate, Lanes
from rag_streams.settings import Settings

__all__ = ["StageRuntime"]
T = TypeVar("T")


class StageRuntime:
    """The protocol of one stage (``name``: its role) on one Faust app."""

    def __init__(
        self, name: str, app: Any, settings: Settings, deadletter_topic: Any, lanes: Lanes | None = None
    ) -> None:
        self.name = name
        self.app = app
        self.settings = settings
        self._deadletter = deadletter_topic
        self._gate = LaneGate(lanes)  # the stage's turns, when it has lanes

    async def each(self, stream: Any, handle: Callable[..., Awaitable[None]], *, lane: str | None = None) -> None:
        """Handle the stream's events one by one. An event whose handling is cut off (a stop, a
        rebalance, a bug) is not acked, so its partition's next owner processes it again; one that
        fails for good (PermanentError) is dead-lettered and acked. With ``lane``: ``handle(event, lane)``
        in the stage's lane turns."""
        async for event in stream.events():
            with (
                redelivered_unless_done(self.app.consumer, [event]),
                stage_tracing.consuming(self.name, [event], batch=False),
            ):
                try:
                    await self._call(handle, event, lane)
                except PermanentError as exc:
                    await self.dead_letter(event, exc)
            metrics.messages_processed_total.labels(self.name).inc()

    async def batches(
        self,
        stream: Any,
        handle: Callable[..., Awaitable[None]],
        *,
        size: int | None = None,
        lane: str | None = None,
        pieces: Callable[[list[Any]], list[list[Any]]] | None = None,
    ) -> None:
        """Handle the stream in batches of up to ``size`` (RAG_EMBED_BATCH) events or RAG_EMBED_WINDOW_S.
        Faust acks a whole batch when it ends: ``handle`` dead-letters its own failures (see
        :meth:`decoded`); a batch cut off is not acked. With ``lane``: ``handle(events, lane)`` in the
        stage's lane turns; with ``pieces``, a take is handled in those pieces, in order, a turn each
        (other lanes' work may go between them)."""
        size, within = size or self.settings.embed_batch, self.settings.embed_window_s
        async for events in stream.take_events(size, within=within):
            with (
                redelivered_unless_done(self.app.consumer, events),
                stage_tracing.consuming(self.name, events, batch=True),
            ):
                for piece in pieces(events) if pieces is not None else [events]:
                    await self._call(handle, piece, lane)
            metrics.messages_processed_total.labels(self.name).inc(len(events))

    async def _call(self, handle: Callable[..., Awaitable[None]], work: Any, lane: str | None) -> None:
        if lane is None:
            await handle(work)
            return
        async with self._gate.turn(bulk=lane == "bulk"):
            await handle(work, lane)

    async def decoded(self, events: Iterable[Any], decode: Callable[[Any], T]) -> list[tuple[Any, T]]:
        """``(event, decode(event))`` for the events that decode; the others are dead-lettered."""
        out: list[tuple[Any, T]] = []
        for event in events:
            try:
                out.append((event, decode(event)))
            except PermanentError as exc:
                await self.dead_letter(event, exc)
        return out

    def emit(self, event: Any) -> AbstractAsyncContextManager[None]:
        """Send ``event``'s outputs and write its table rows in one unit that no commit splits, in
        the transaction of ``event``'s partition. Never nested: a waiting commit would deadlock.
        Traced, ``event``'s span is current in it: its sends' ``tracing.inject(headers)`` carry it."""
        return stage_tracing.emitting(event, emitting_for(event))

    def handled(self, event: Any) -> None:
        """``event`` is done (its outputs, dead letter or nothing sent): in a batch, its offset may
        commit with its outputs before the batch ends (work-around 23, :mod:`rag_streams._faust.acks`)."""
        ack_handled(self.app, event)

    def record(self, event: Any) -> AbstractContextManager[None]:
        """Write table rows (no sends) under ``event``: their changelog records commit in the
        transaction of ``event``'s partition."""
        return acting_on(event)

    async def dead_letter(self, event: Any, exc: BaseException) -> None:
        """The event's original bytes and the error to the dead-letter topic, in its transaction."""
        await dead_letter(event, exc, stage=self.name, topic=self._deadletter)

    def observe(self, produced_at_ms: int | None, *, now: float | None = None) -> float | None:
        """Record produce -> this stage's latency; returns it (None without a produce time)."""
        if not produced_at_ms:
            return None
        latency = max(0.0, (time.time() if now is None else now) - produced_at_ms / 1000)
        metrics.pipeline_latency_seconds.labels(self.name).observe(latency)
        return latency
