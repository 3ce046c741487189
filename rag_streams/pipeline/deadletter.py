"""Sending a message that cannot be processed to the dead-letter topic, with its reason."""

from __future__ import annotations

import logging
import time
from typing import Any

from rag_streams._faust.commit_gate import emitting_for
from rag_streams.adapters.codecs import DEADLETTER
from rag_streams.observability import metrics
from rag_streams.rules.records import TENANT_RE, DeadLetter

__all__ = ["dead_letter"]
log = logging.getLogger(__name__)


def tenant_of(key: bytes | None) -> str | None:
    """The tenant of a ``tenant/doc_id`` key, when it is a valid tenant id (bad input may not be)."""
    tenant = (key or b"").partition(b"/")[0].decode("utf-8", errors="replace")
    return tenant if TENANT_RE.fullmatch(tenant) else None


async def dead_letter(event: Any, exc: BaseException, *, stage: str, topic: Any) -> None:
    """Publish the event's original key and value bytes with the error; same partition, same transaction."""
    msg = event.message
    record = DeadLetter(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=msg.key,
        value=msg.value,
        error_class=type(exc).__name__,
        message=str(exc)[:2000],
        stage=stage,
        time=int(time.time() * 1000),
    )
    async with emitting_for(event):  # never called inside another unit: a waiting commit would deadlock
        await topic.send(key=msg.key, value=DEADLETTER.encode(record), partition=msg.partition)
    metrics.deadletter_total.labels(stage, record.error_class).inc()
    log.warning(
        "dead-lettered %s[%d]@%d: %s: %s",
        msg.topic,
        msg.partition,
        msg.offset,
        record.error_class,
        record.message,
        extra={"stage": stage, "tenant": tenant_of(msg.key), "error_code": getattr(exc, "code", "error")},
    )
