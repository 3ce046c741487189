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
from typing import Any, cast

import orjson
from aiokafka.errors import KafkaError
from faust.web import Request, Response, View

from rag_streams.api import ApiError, _check_tenant, _error, _json_body
from rag_streams.api_inputs import query_version, upsert_fields
from rag_streams.app import app, settings
from rag_streams.errors import BadInput, is_transient
from rag_streams.logs import access_log
from rag_streams.producer import DocumentProducer
from rag_streams.records import check_doc_id

log = logging.getLogger(__name__)
_producer: DocumentProducer | None = None
_starting = asyncio.Lock()


async def _documents() -> DocumentProducer:
    """The process's producer to the raw topic, started on first use."""
    global _producer
    async with _starting:
        if _producer is None:
            producer = DocumentProducer(settings)
            await producer.start()
            _producer = producer
    return _producer


async def _close_documents(sender: Any, *args: Any, **kwargs: Any) -> None:
    """Stop the producer when the worker stops (else: "Unclosed AIOKafkaProducer" at exit)."""
    global _producer
    producer, _producer = _producer, None
    if producer is not None:
        await producer.stop()


app.on_before_shutdown.connect(cast(Any, _close_documents))  # cast: see lag_export


@app.page("/v1/tenants/{tenant}/documents/{doc_id}")
class DocumentView(View):
    @access_log(log)
    async def put(self, request: Request, tenant: str, doc_id: str) -> Response:
        async def publish() -> int:
            text, version, metadata = upsert_fields(await _json_body(request))
            return await (await _documents()).upsert(tenant, doc_id, text, version, metadata)

        return await self._published(request, tenant, doc_id, "upsert", publish)

    @access_log(log)
    async def delete(self, request: Request, tenant: str, doc_id: str) -> Response:
        async def publish() -> int:
            version = query_version(request.query.get("version"))
            return await (await _documents()).delete(tenant, doc_id, version)

        return await self._published(request, tenant, doc_id, "delete", publish)

    async def _published(self, request: Request, tenant: str, doc_id: str, op: str, publish: Any) -> Response:
        try:
            _check_tenant(request, tenant)
            check_doc_id(doc_id)
            version = await publish()
        except ApiError as exc:
            return _error(self, exc.status, str(exc))
        except BadInput as exc:
            return _error(self, 400, str(exc))
        except Exception as exc:
            if not (isinstance(exc, KafkaError) or is_transient(exc)):
                raise
            log.warning("publishing %s/%s failed: %r", tenant, doc_id, exc, extra={"tenant": tenant})
            return _error(self, 503, f"the broker did not take the document: {type(exc).__name__}")
        body = {"tenant": tenant, "doc_id": doc_id, "version": version, "op": op}
        return self.bytes(orjson.dumps(body), status=202, content_type="application/json")
