"""Work-arounds for faust-streaming behaviour, each explained where it is defined.

1. ``Stream.take_events()`` hands a batch to the agent body outside any event's context:
   table writes then fail ("Cannot modify table key from outside of stream iteration") and
   sends cannot tell which input they belong to. :func:`acting_on` makes one event of the
   batch current while a table is written or a message is sent for it.

2. Under ``exactly_once`` Faust keeps one transactional producer per (topic group, partition)
   and commits a source partition's offsets in the transaction of the *source* topic's group,
   but ``TransactionManager.send`` picks the producer of the *destination* topic's group. A
   stage's output and the offsets of its input then land in different transactions: a worker
   killed between the two commits loses the output (the input offset was committed) or
   duplicates it. Found by tests/integration/test_crash.py (a document vanished after SIGKILL).
   :func:`install_source_transactions` sends every message produced while processing an event
   through the transaction of that event's source partition, so outputs, table changelogs and
   input offsets commit atomically.

3. Faust's RocksDB store writes a table update to disk at once, while its changelog record and
   the input offset wait for the transaction. A worker killed before the commit restarts with
   table rows of aborted transactions (a version "already accepted" whose chunks were never
   committed), so the replayed input is dropped and its document is lost. Kafka Streams wipes
   its state stores after an unclean exactly-once shutdown for the same reason.
   :func:`discard_local_tables` removes the local stores before a worker starts, and Faust
   restores every table from its changelog with a read_committed consumer: table state is then
   exactly what committed transactions wrote.

4. When table recovery completes, Faust resumes the stream partitions, awaits the seek to the
   committed offsets, and only then calls ``flow_control.resume()``, which *clears every stream
   queue* (meant for events of the previous generation). Whatever was fetched during that seek
   (a restarted worker with a backlog fetches at once) is dropped after its fetch position moved
   on: those messages are never processed, and once later offsets are acked Faust commits past
   them. Found by tests/integration/test_offsets_after_ack.py (documents missing after a restart,
   the worker idle with lag). :func:`install_ordered_stream_resume` clears the queues first and
   resumes the stream partitions last, after the seek.
"""

from __future__ import annotations

import shutil
import weakref
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from faust.streams import _current_event, current_event
from faust.tables.recovery import Recovery
from faust.transport.consumer import TransactionManager

__all__ = [
    "acting_on",
    "discard_local_tables",
    "install_ordered_stream_resume",
    "install_source_transactions",
]


@contextmanager
def acting_on(event: Any) -> Iterator[None]:
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


_original_send = TransactionManager.send


async def _send_in_source_transaction(
    self: TransactionManager,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    partition: int | None,
    timestamp: float | None,
    headers: Any,
    *,
    transactional_id: str | None = None,
) -> Awaitable[Any]:
    event = current_event()
    if event is None:
        return await _original_send(self, topic, key, value, partition, timestamp, headers)
    source = event.message
    group = self.app.assignor.group_for_topic(source.topic)
    tid = f"{self.app.conf.id}-{group}-{source.partition}"
    if partition is None:
        partition = self.consumer.key_partition(topic, key, partition)
    return await self.producer.send(topic, key, value, partition, timestamp, headers, transactional_id=tid)


def install_source_transactions() -> None:
    """Route sends made for an event through its source partition's transaction (idempotent)."""
    TransactionManager.send = _send_in_source_transaction  # type: ignore[method-assign,assignment]


def _stream_partitions_resumed_last(original: Any) -> Any:
    async def resume_in_order(self: Recovery, generation_id: int = 0) -> None:
        consumer: Any = self.app.consumer
        flow_control: Any = self.app.flow_control
        flow_control.resume()  # drop the previous generation's events before any new one arrives
        deferred: set[Any] = set()
        consumer.resume_partitions = deferred.update  # the original seeks with streams still paused
        flow_control.clear = _keep_queues  # and its flow_control.resume() keeps what arrives after
        try:
            await original(self, generation_id)
        finally:
            del consumer.resume_partitions, flow_control.clear
        if deferred and self.app.consumer_generation_id == generation_id:
            consumer.resume_partitions(deferred)

    resume_in_order.__wrapped__ = original  # type: ignore[attr-defined]
    return resume_in_order


def _keep_queues() -> None:
    pass


def install_ordered_stream_resume() -> None:
    """Resume stream partitions only after the seek and the queue clearing (idempotent)."""
    for name in ("on_recovery_completed", "_resume_streams"):
        method = getattr(Recovery, name)
        if not hasattr(method, "__wrapped__"):
            setattr(Recovery, name, _stream_partitions_resumed_last(method))


def discard_local_tables(tabledir: Path) -> bool:
    """Remove Faust's local table stores so they are restored from committed changelogs."""
    if not tabledir.exists() or not any(tabledir.iterdir()):
        return False
    shutil.rmtree(tabledir)
    return True
