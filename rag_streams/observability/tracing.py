"""OpenTelemetry traces: one trace per document version, from its publish to the store write, and
one per search (docs/tracing.md).

Off by default, at no cost: until :func:`configure` finds an exporter in the standard ``OTEL_*``
variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
``OTEL_TRACES_EXPORTER``), no TracerProvider is installed, every helper here returns at its first
check, and no record gets a header.

The context crosses Kafka as W3C ``traceparent``/``tracestate`` record headers (:func:`inject`): the
publish span is the parent of the chunk stage's span for that message, which is the parent of the
chunks' embed spans, and so on. Faust fetches in a thread of its own, so the context is never taken
from the consumer: each stage reads it from the event's headers, in the agent's task. The stages'
spans (per message, per batch, the store write): :mod:`rag_streams.observability.stage_tracing`.

The ``OTEL_*`` variables are the OpenTelemetry SDK's own (its exporter and processors read them from
the environment themselves), not ``RAG_*`` settings: :func:`configure` only decides whether to turn
the SDK on, and refuses an exporter that is not installed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from functools import wraps
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, TracerProvider

from rag_streams.settings import SettingsError

__all__ = [
    "call",
    "configure",
    "enabled",
    "extract",
    "inject",
    "publishing",
    "server_span",
    "set_attributes",
    "span",
    "tracer",
    "use",
]

Headers = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
CLIENT = SpanKind.CLIENT
_OFF: Any = nullcontext()  # reusable: what every span helper returns while tracing is off
_tracer: Tracer | None = None


def enabled() -> bool:
    return _tracer is not None


def tracer() -> Tracer | None:
    """The tracer while tracing is on (None: off)."""
    return _tracer


def exporters(environ: Mapping[str, str]) -> list[str]:
    """The span exporters the ``OTEL_*`` variables ask for (empty: tracing off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        return ["otlp"] if endpoint else []
    unknown = sorted(set(names) - {"otlp", "console", "none"})
    if unknown:
        raise SettingsError(f"OTEL_TRACES_EXPORTER: {unknown[0]!r} is not one of otlp, console, none")
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if "otlp" in names and protocol not in (None, "", "http/protobuf"):
        raise SettingsError(f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r}: only http/protobuf is installed")
    return [n for n in names if n != "none"]


def configure(environ: Mapping[str, str]) -> bool:
    """Turn tracing on if the ``OTEL_*`` variables name an exporter (once per process); returns
    whether it is on. A TracerProvider the embedding program installed itself is used as it is."""
    global _tracer
    if _tracer is not None or not (names := exporters(environ)):
        return _tracer is not None
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    current = trace.get_tracer_provider()
    if isinstance(current, SdkTracerProvider):
        return use(current)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    named = "OTEL_SERVICE_NAME" in environ or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = SdkTracerProvider(resource=Resource.create({} if named else {"service.name": "rag-streams"}))
    for name in names:  # each reads its own OTEL_EXPORTER_OTLP_* / OTEL_BSP_* variables
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)  # flushed and shut down at exit
    return use(provider)


def use(provider: TracerProvider | None) -> bool:
    """Trace to ``provider`` (tests: an SDK provider with an in-memory exporter); None: off."""
    global _tracer
    _tracer = None if provider is None else provider.get_tracer("rag_streams")
    return _tracer is not None


# -- the context in Kafka record headers ---------------------------------------------------------


def _pairs(headers: Headers) -> Iterable[tuple[str, Any]]:
    return headers.items() if isinstance(headers, Mapping) else (headers or ())


def inject(headers: Headers = None) -> Any:
    """``headers`` plus the current span's ``traceparent`` (and ``tracestate``), replacing any
    already there; the other headers (repair, deleted version) are kept. Off: ``headers`` as is."""
    if _tracer is None:
        return headers
    from opentelemetry import propagate  # imported only when on: it reads its entry points (~25 ms)

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if not carrier:
        return headers
    kept = [(k, v) for k, v in _pairs(headers) if k not in carrier]
    return [*kept, *((k, v.encode()) for k, v in carrier.items())]


def extract(headers: Headers) -> Context:
    """The trace context carried by a record's headers (an empty context: none)."""
    from opentelemetry import propagate

    fields = propagate.get_global_textmap().fields
    carrier = {k: v.decode("latin-1") for k, v in _pairs(headers) if k in fields and isinstance(v, bytes)}
    return propagate.extract(carrier)


# -- spans ---------------------------------------------------------------------------------------


def _attrs(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (attributes or {}).items() if v is not None}


def span(name: str, attributes: Mapping[str, Any] | None = None, *, kind: SpanKind = SpanKind.INTERNAL) -> Any:
    """A span, child of the current one, current while the block runs (off: a no-op block)."""
    if _tracer is None:
        return _OFF
    return _tracer.start_as_current_span(name, kind=kind, attributes=_attrs(attributes))


async def call(name: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``await fn(*args)`` in a span ``name`` (a cache lookup...); off: just the call."""
    if _tracer is None:
        return await fn(*args)
    with _tracer.start_as_current_span(name, kind=SpanKind.CLIENT):
        return await fn(*args)


def set_attributes(attributes: Mapping[str, Any]) -> None:
    """Attributes on the current span."""
    if _tracer is not None:
        trace.get_current_span().set_attributes(_attrs(attributes))


def doc_attributes(doc: Any) -> dict[str, Any]:
    """The attributes of a document version (a RawDocument, Chunk or EmbeddingUpsert)."""
    return {"rag.tenant": doc.tenant_id, "rag.doc_id": doc.doc_id, "rag.version": doc.version, "rag.op": doc.op}


def publishing(topic: str, doc: Any = None, key: bytes | None = None) -> Any:
    """The span of a publish to the raw topic; :func:`inject` under it gives the record its context."""
    if _tracer is None:
        return _OFF
    attrs = {"messaging.system": "kafka", "messaging.destination.name": topic, **(doc_attributes(doc) if doc else {})}
    if key is not None:
        attrs["messaging.kafka.message.key"] = key.decode(errors="replace")
    return _tracer.start_as_current_span("publish", kind=SpanKind.PRODUCER, attributes=attrs)


def server_span(name: str) -> Callable[[F], F]:
    """Decorate an HTTP view method: a SERVER span per request, continuing a ``traceparent`` the
    client sent, with the tenant and the status code."""

    def decorate(handler: F) -> F:
        @wraps(handler)
        async def traced(view: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            if _tracer is None:
                return await handler(view, request, *args, **kwargs)
            attrs = {
                "http.request.method": request.method,
                "url.path": request.path,
                "rag.tenant": kwargs.get("tenant"),
            }
            attrs["rag.doc_id"] = kwargs.get("doc_id")
            parent = extract([(k.lower(), v.encode()) for k, v in request.headers.items()])
            with _tracer.start_as_current_span(name, parent, kind=SpanKind.SERVER, attributes=_attrs(attrs)) as s:
                response = await handler(view, request, *args, **kwargs)
                s.set_attribute("http.response.status_code", response.status)
                if response.status >= 500:
                    s.set_status(Status(StatusCode.ERROR))
                return response

        return traced  # type: ignore[return-value]

    return decorate
