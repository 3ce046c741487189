"""The public Python producer: publish document versions and deletes to the raw topic."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer

from rag_streams.adapters.codecs import RAW, configure
from rag_streams.observability import tracing
from rag_streams.pipeline.topics import TopicNames, max_message_bytes
from rag_streams.rules.records import DELETE, UPSERT, RawDocument, validate_raw
from rag_streams.settings import Settings, load_settings

__all__ = ["DocumentProducer", "next_version"]

_last_version = 0


def next_version() -> int:
    """A monotonic version for this process: epoch microseconds, strictly increasing."""
    global _last_version
    _last_version = max(time.time_ns() // 1000, _last_version + 1)
    return _last_version


class DocumentProducer:
    """``async with DocumentProducer() as p: await p.upsert("acme", "a.md", "text")``.

    Messages are keyed ``tenant/doc_id`` (one partition per document, in order), validated
    before sending, and written with an idempotent producer (acks=all).
    """

    def __init__(self, settings: Settings | None = None, **producer_options: Any) -> None:
        self.settings = settings or load_settings()
        configure(self.settings)  # the fingerprint byte order this process writes (RAG_AVRO_FINGERPRINT)
        names = TopicNames.for_prefix(self.settings.topic_prefix)
        self.topic, self.bulk_topic = names.raw, names.raw_bulk
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_request_size=max_message_bytes(self.settings),
            **producer_options,
        )

    async def __aenter__(self) -> DocumentProducer:
        await self.start()
        return self

    async def __aexit__(
        self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(
        self, doc: RawDocument, *, headers: list[tuple[str, bytes]] | None = None, bulk: bool = False
    ) -> RawDocument:
        """Publish a document; ``bulk``: to the bulk lane's raw topic (embedded while interactive updates
        leave the model idle: docs/multitenancy.md, Fairness)."""
        doc = validate_raw(doc, max_bytes=self.settings.max_doc_bytes)
        topic = self.bulk_topic if bulk and self.settings.bulk_lane else self.topic
        with tracing.publishing(topic, doc):  # traced: the record carries the span's traceparent
            value, key = RAW.encode(doc), doc.key.encode()
            await self._producer.send_and_wait(topic, value, key=key, headers=tracing.inject(headers))
        return doc

    async def send_raw(
        self, key: bytes, value: bytes | None, *, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        """Publish an already encoded raw message as is (a replay from rag.documents.latest)."""
        with tracing.publishing(self.topic, key=key):
            await self._producer.send_and_wait(self.topic, value, key=key, headers=tracing.inject(headers))

    async def upsert(
        self,
        tenant: str,
        doc_id: str,
        text: str,
        version: int | None = None,
        metadata: dict[str, str] | None = None,
        *,
        source: str = "",
        content_type: str = "text/plain",
        bulk: bool = False,
    ) -> int:
        """Publish a document version; returns the version (a monotonic clock when not given).
        ``bulk``: through the bulk lane (embedded when interactive updates leave the model idle)."""
        doc = RawDocument(
            tenant_id=tenant,
            doc_id=doc_id,
            version=next_version() if version is None else version,
            op=UPSERT,
            text=text,
            content_type=content_type,
            source=source,
            metadata=dict(metadata or {}),
            produced_at=int(time.time() * 1000),
        )
        return (await self.send(doc, bulk=bulk)).version

    async def delete(self, tenant: str, doc_id: str, version: int | None = None) -> int:
        doc = RawDocument(
            tenant_id=tenant,
            doc_id=doc_id,
            version=next_version() if version is None else version,
            op=DELETE,
            produced_at=int(time.time() * 1000),
        )
        return (await self.send(doc)).version
