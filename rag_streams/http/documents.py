"""Publishing documents over HTTP (SPEC §7): the API's side of ``DocumentProducer``.

- ``PUT    /v1/tenants/{t}/documents/{doc_id}``  ``{"text", "version"?, "metadata"?}`` -> 202
- ``DELETE /v1/tenants/{t}/documents/{doc_id}[?version=N]``                          -> 202

Both answer ``{"tenant", "doc_id", "version", "op"}`` once the raw message is acknowledged by
Kafka (acks=all); indexing follows asynchronously. Bad input is a 400 JSON error; a broker that
cannot take the message is a 503.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar, cast

from faust.web import Request, Response

from rag_streams.adapters.producer import DocumentProducer
from rag_streams.http.api import Api, ApiView, _json_body
from rag_streams.http.inputs import query_version, upsert_fields
from rag_streams.observability import tracing
from rag_streams.observability.logs import access_log
from rag_streams.rules.records import check_doc_id
from rag_streams.settings import Settings

log = logging.getLogger(__name__)
__all__ = ["Documents", "register"]


class Documents:
    """The worker's producer to the raw topic, started on first use, stopped with the worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: DocumentProducer | None = None
        self._starting = asyncio.Lock()

    async def producer(self) -> DocumentProducer:
        async with self._starting:
            if self._producer is None:
                producer = DocumentProducer(self.settings)
                await producer.start()
                self._producer = producer
        return self._producer

    async def close(self, sender: Any = None, *args: Any, **kwargs: Any) -> None:
        """Stop the producer when the worker stops (else: "Unclosed AIOKafkaProducer" at exit)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


def register(api: Api) -> Documents:
    """``PUT``/``DELETE /v1/tenants/{t}/documents/{doc_id}`` on the API's app."""
    documents = Documents(api.settings)
    api.app.on_before_shutdown.connect(cast(Any, documents.close))  # cast: see lag_export
    view = type("DocumentView", (DocumentView,), {"documents": documents})
    api.route("/v1/tenants/{tenant}/documents/{doc_id}", view)
    return documents


class DocumentView(ApiView):
    documents: ClassVar[Documents]

    @access_log(log)
    @tracing.server_span("documents.put")
    async def put(self, request: Request, tenant: str, doc_id: str) -> Response:
        async def publish() -> int:
            text, version, metadata = upsert_fields(await _json_body(request))
            return await (await self.documents.producer()).upsert(tenant, doc_id, text, version, metadata)

        return await self._published(request, tenant, doc_id, "upsert", publish)

    @access_log(log)
    @tracing.server_span("documents.delete")
    async def delete(self, request: Request, tenant: str, doc_id: str) -> Response:
        async def publish() -> int:
            version = query_version(request.query.get("version"))
            return await (await self.documents.producer()).delete(tenant, doc_id, version)

        return await self._published(request, tenant, doc_id, "delete", publish)

    async def _published(self, request: Request, tenant: str, doc_id: str, op: str, publish: Any) -> Response:
        async def run() -> dict[str, Any]:
            check_doc_id(doc_id)
            version = await publish()
            return {"tenant": tenant, "doc_id": doc_id, "version": version, "op": op}

        return await self.respond(request, tenant, run, status=202, unavailable="the broker did not take the document")
