"""The stages' spans: each message (chunk) or batch (embed, index) a stage handles, and the vector
store writes, linked into each document version's trace (:mod:`rag_streams.observability.tracing`).

One event: a ``<stage>`` span, child of the context in its headers. A batch: a ``<stage> batch``
span linked to every message's context, and a ``<stage>`` span per document version in it (per
distinct context), a child of that document's context. The agent names the document version of
each event (:func:`annotate`) and its sends carry its span (:func:`emitting`, ``tracing.inject``).
Off, every function returns at its first check.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer

from rag_streams.observability import tracing
from rag_streams.observability.tracing import _attrs, doc_attributes, extract

__all__ = ["annotate", "consuming", "emitting", "store_write"]
_OFF = tracing._OFF


class _Work:
    """The spans of the events being handled: per event (its document's span) and per document."""

    def __init__(self) -> None:
        self.by_event: dict[int, Span] = {}
        self.by_doc: dict[tuple[str, str, int], Span] = {}
        self.counts: dict[int, Counter[str]] = {}  # by id(span)


_work: ContextVar[_Work | None] = ContextVar("rag_streams_tracing_work", default=None)


def consuming(stage: str, events: Sequence[Any], *, batch: bool) -> Any:
    """The spans of a stage's work on ``events``: one event (``batch=False``): a ``stage`` span,
    child of the context in its headers. A batch: a ``<stage> batch`` span linked to each message's
    context, and a ``stage`` span per distinct context (a document version), its child."""
    return _OFF if (t := tracing.tracer()) is None else _consuming(t, stage, events, batch)


@contextmanager
def _consuming(tracer: Tracer, stage: str, events: Sequence[Any], batch: bool) -> Iterator[None]:
    work = _Work()
    message: Any = events[0].message if events else None
    base = {
        "rag.stage": stage,
        "messaging.system": "kafka",
        "messaging.destination.name": getattr(message, "topic", None),
    }
    if not batch and message is not None:
        attrs = {
            **base,
            "messaging.kafka.message.offset": message.offset,
            "messaging.destination.partition.id": str(message.partition),
        }
        parent = extract(message.headers)
        with tracer.start_as_current_span(stage, parent, kind=SpanKind.CONSUMER, attributes=_attrs(attrs)) as s:
            work.by_event[id(events[0])] = s
            token = _work.set(work)
            try:
                yield
            finally:
                _work.reset(token)
                _end_counts(work)
        return
    groups: dict[Any, tuple[Context, list[Any]]] = {}
    for event in events:
        ctx = extract(event.message.headers)
        sc = trace.get_current_span(ctx).get_span_context()
        groups.setdefault((sc.trace_id, sc.span_id) if sc.is_valid else None, (ctx, []))[1].append(event)
    links = [Link(trace.get_current_span(ctx).get_span_context()) for key, (ctx, _) in groups.items() if key]
    attrs = {**base, "messaging.batch.message_count": len(events)}
    with tracer.start_as_current_span(
        f"{stage} batch", kind=SpanKind.CONSUMER, links=links, attributes=_attrs(attrs)
    ) as b:
        started, spans = time.time_ns(), []
        for key, (ctx, group) in groups.items():
            if key is None:  # no context (published untraced): the batch span stands for them
                continue
            attrs = {**base, "messaging.batch.message_count": len(group)}
            s = tracer.start_span(
                stage,
                ctx,
                kind=SpanKind.CONSUMER,
                attributes=_attrs(attrs),
                links=[Link(b.get_span_context())],
                start_time=started,
            )
            spans.append(s)
            work.by_event.update((id(e), s) for e in group)
        token = _work.set(work)
        try:
            yield
        except BaseException as exc:
            for s in spans:
                s.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: the batch failed"))
            raise
        finally:
            _work.reset(token)
            _end_counts(work)
            for s in spans:
                s.end()


def _end_counts(work: _Work) -> None:
    for s in {id(s): s for s in work.by_event.values()}.values():
        s.set_attributes(dict(work.counts.get(id(s), {})))


def annotate(event: Any, doc: Any, **counts: int) -> None:
    """Name the document version ``event`` belongs to on its span (tenant, doc_id, version, the
    document's chunk count) and add ``counts`` to that span's counters (``rag.chunks_embedded``...)."""
    work = _work.get()
    if work is None or (s := work.by_event.get(id(event))) is None:
        return
    attrs = doc_attributes(doc)
    if (total := getattr(doc, "chunk_count", None)) is not None:
        attrs["rag.chunk_count"] = total
    s.set_attributes(attrs)
    work.by_doc[(doc.tenant_id, doc.doc_id, doc.version)] = s
    counter = work.counts.setdefault(id(s), Counter())
    for name, n in counts.items():
        counter[f"rag.{name}"] += n


def emitting(event: Any, inner: AbstractAsyncContextManager[None]) -> AbstractAsyncContextManager[None]:
    """``inner`` (the emit of ``event``'s outputs) with ``event``'s span current, so that the
    records sent in it carry that span's context (:func:`inject`)."""
    work = _work.get()
    if work is None or (s := work.by_event.get(id(event))) is None:
        return inner
    return _within(s, inner)


@asynccontextmanager
async def _within(s: Span, inner: AbstractAsyncContextManager[None]) -> AsyncIterator[None]:
    with trace.use_span(s, end_on_exit=False):
        async with inner:
            yield


def store_write(operation: str, tenant: str, items: Sequence[Any]) -> Any:
    """A vector store write of ``items`` (records with doc_id and version): one ``operation`` span
    per document version in it, each a child of that document's span in the batch, with its points
    (``rag.points``) and the write's (``rag.batch_points``); the write's start and end."""
    return _OFF if (t := tracing.tracer()) is None else _store_write(t, operation, tenant, items)


@contextmanager
def _store_write(tracer: Tracer, operation: str, tenant: str, items: Sequence[Any]) -> Iterator[None]:
    work, started = _work.get(), time.time_ns()
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        ended = time.time_ns()
        points = Counter((tenant, i.doc_id, i.version) for i in items)
        for (_, doc_id, version), n in points.items():
            doc_span = work.by_doc.get((tenant, doc_id, version)) if work else None
            parent = trace.set_span_in_context(doc_span) if doc_span is not None else None
            attrs = {"rag.tenant": tenant, "rag.doc_id": doc_id, "rag.version": version, "rag.points": n}
            attrs["rag.batch_points"] = sum(points.values())
            s = tracer.start_span(operation, parent, kind=SpanKind.CLIENT, attributes=attrs, start_time=started)
            if error is not None:
                s.record_exception(error)
                s.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}"))
            s.end(ended)
