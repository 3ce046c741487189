"""Writer schemas of Confluent-framed messages, by schema id, from a Schema Registry's REST API.

``GET {RAG_SCHEMA_REGISTRY_URL}/schemas/ids/{id}`` answers ``{"schema": "<Avro schema JSON>"}``
(``schemaType`` absent or ``AVRO``). An id's schema never changes in a registry, so each one is
fetched once and kept for the life of the process; concurrent lookups of one id share a request.
The fetch is asynchronous (aiohttp): the worker awaits it before decoding, off the hot path, and
:meth:`SchemaRegistry.get` is a plain dictionary read.

A missing id (404) or a schema that is not Avro is the message's fault: :class:`BadInput`, so it
is dead-lettered. An unreachable or failing registry is :class:`TransientError`: retried, never a
reason to dead-letter.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, cast

import aiohttp
from fastavro.schema import parse_schema

from rag_streams.errors import BadInput, TransientError

__all__ = ["SchemaRegistry"]

log = logging.getLogger(__name__)


class SchemaRegistry:
    """Cache of parsed Avro writer schemas by Confluent schema id."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.requests = 0  # GETs sent (each id once, unless a fetch failed)
        self._schemas: dict[int, dict[str, Any]] = {}
        self._inflight: dict[int, asyncio.Future[dict[str, Any]]] = {}

    def get(self, schema_id: int) -> dict[str, Any] | None:
        """The cached schema of ``schema_id``, or None if it has not been fetched."""
        return self._schemas.get(schema_id)

    async def fetch(self, schema_id: int) -> dict[str, Any]:
        """The schema of ``schema_id``: from the cache, or fetched once (concurrent callers share it)."""
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        pending = self._inflight.get(schema_id)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(schema_id))
            self._inflight[schema_id] = pending
            pending.add_done_callback(lambda _: self._inflight.pop(schema_id, None))
        return await asyncio.shield(pending)  # a cancelled caller does not cancel the others' fetch

    async def _fetch(self, schema_id: int) -> dict[str, Any]:
        url = f"{self.url}/schemas/ids/{schema_id}"
        self.requests += 1
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as session,
                session.get(url, headers={"Accept": "application/vnd.schemaregistry.v1+json"}) as resp,
            ):
                status, text = resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"schema registry {url}: {type(exc).__name__}: {exc}") from exc
        if status == 404:
            raise BadInput(f"schema id {schema_id} is not in the schema registry ({text[:200]})")
        if status != 200:
            raise TransientError(f"schema registry {url} answered {status}: {text[:200]}")
        schema = _parse(schema_id, text)
        self._schemas[schema_id] = schema
        log.info("schema registry: fetched schema id %d (%s)", schema_id, schema.get("name"))
        return schema


def _parse(schema_id: int, text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
        kind = body.get("schemaType", "AVRO")
        raw = body["schema"]
    except (ValueError, AttributeError, KeyError, TypeError) as exc:
        raise TransientError(f"schema registry answer for id {schema_id} is not a schema: {text[:200]}") from exc
    if kind != "AVRO":
        raise BadInput(f"schema id {schema_id} is a {kind} schema, not Avro")
    if body.get("references"):
        raise BadInput(f"schema id {schema_id} has schema references, which are not supported")
    try:
        schema = parse_schema(json.loads(raw))
    except Exception as exc:  # fastavro raises several types for a schema it cannot parse
        raise BadInput(f"schema id {schema_id} is not a valid Avro schema: {type(exc).__name__}: {exc}"[:300]) from exc
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise BadInput(f"schema id {schema_id} is not an Avro record schema")
    return cast("dict[str, Any]", schema)
