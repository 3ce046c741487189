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

5. Under ``exactly_once`` Faust only *flushes* when partitions are revoked; the open transactions
   stay open through the rebalance (``begin_transaction`` then warns "IN_TRANSACTION ->
   IN_TRANSACTION") while table recovery runs again. Recovery reads each changelog's highwater
   with a read_committed consumer, so it sees the partition end *before* this worker's own open
   transaction, below the offset the store persisted when it sent those changelog records:
   Faust crashes with ``ConsistencyError("The persisted offset ... is higher than the last
   offset")``. Found by tests/integration/test_crash.py (a worker restarted after a SIGKILL
   crashed when the killed member's session expired and the group rebalanced).
   :func:`install_commit_on_revoke` commits, when partitions are revoked, the acked offsets with
   the outputs of their events, and any transaction still open, before the rebalance goes on:
   what Kafka Streams does under eager rebalancing.

6. Table writes do not reach Kafka when they are made: their changelog records wait in Faust's
   ``ProducerBuffer`` for a background task. A transactional commit does not wait for that
   buffer, so a changelog record can land in a later transaction than its event's offset; and
   on revocation Faust ends the transactions (``commit_and_end_transactions``) *before* it
   flushes the buffer, whose sends then fail with ``IllegalOperation("Can't send messages
   while not in transaction")`` and crash the worker. Found by tests/integration/test_crash.py
   (a rebalance while the restarted worker processed its first batch).
   :func:`install_buffer_drain_before_commit` hands every buffered record to its transaction
   (and waits for the one the background task may be sending) before Faust commits. It also
   begins the transaction of any producer whose offsets are about to be committed but whose
   transaction Faust ended (``commit_and_end_transactions`` on revocation) and did not begin
   again: ``send_offsets_to_transaction`` raised ``IllegalOperation("Not in the middle of a
   transaction")`` from the commit timer and the worker crashed (seen once, in
   tests/integration/test_offsets_after_ack.py, seconds after a restart).

7. Transactional ids are ``{app_id}-{topic group}-{partition}``, and Faust's group leader numbers
   topic groups by *partition count*: every 3-partition topic (raw, chunks, embeddings and all
   table changelogs) is in the same group. One worker with every role then has one transaction
   per partition, but workers of different roles open producers with the same id (the chunk
   worker's raw partition 0 and an embed worker's chunks partition 0 are both ``app-1-0``) and
   fence each other (``ProducerFenced``, then ``IllegalOperation``). Found by
   tests/integration/test_worker_roles.py. :func:`install_stage_transactional_ids` names the
   group of a topic by the stage that consumes it, like a Kafka Streams task: a source topic is
   its own group, and a table's changelog is in the group of the source topic whose events write
   it (declared with :func:`transaction_group`). The ids no longer depend on which workers are
   in the group, so a restarted worker of any role fences its killed predecessor's transactions.
"""

from __future__ import annotations

import asyncio
import shutil
import weakref
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiokafka.producer.transaction_manager import TransactionState
from faust.assignor.partition_assignor import PartitionAssignor
from faust.streams import _current_event, current_event
from faust.tables.recovery import Recovery
from faust.transport.consumer import TransactionManager
from faust.transport.producer import ProducerBuffer

from rag_streams._faust.patch import patch_once

__all__ = [
    "acting_on",
    "begin_ended_transactions",
    "discard_local_tables",
    "install_buffer_drain_before_commit",
    "install_commit_on_revoke",
    "install_ordered_stream_resume",
    "install_source_transactions",
    "install_stage_transactional_ids",
    "transaction_group",
]


@contextmanager
def acting_on(event: Any) -> Iterator[None]:
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def _sends_in_source_transaction(original: Any) -> Any:
    async def send(
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
            result: Awaitable[Any] = await original(self, topic, key, value, partition, timestamp, headers)
            return result
        source = event.message
        group = self.app.assignor.group_for_topic(source.topic)
        tid = f"{self.app.conf.id}-{group}-{source.partition}"
        if partition is None:
            partition = self.consumer.key_partition(topic, key, partition)
        return await self.producer.send(topic, key, value, partition, timestamp, headers, transactional_id=tid)

    return send


def install_source_transactions() -> None:
    """Route sends made for an event through its source partition's transaction (idempotent)."""
    patch_once(TransactionManager, "send", _sends_in_source_transaction)


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

    return resume_in_order


def _keep_queues() -> None:
    pass


def install_ordered_stream_resume() -> None:
    """Resume stream partitions only after the seek and the queue clearing (idempotent)."""
    for name in ("on_recovery_completed", "_resume_streams"):
        patch_once(Recovery, name, _stream_partitions_resumed_last)


def _commits_on_revoke(original: Any) -> Any:
    async def commit_then_revoke(self: TransactionManager, revoked: set[Any]) -> None:
        await original(self, revoked)  # flush what was produced
        consumer: Any = self.consumer
        await consumer.maybe_wait_for_commit_to_finish()  # a commit in flight ends first
        await consumer.force_commit(start_new_transaction=False)  # acked offsets + their outputs
        producer: Any = self.producer
        for tid in sorted(self._tps_to_transactional_ids(revoked)):
            txn = producer._transaction_producers.get(tid)
            if txn is not None and txn._txn_manager.is_in_transaction():  # outputs with no offset to commit
                await producer.commit_transaction(tid)

    return commit_then_revoke


def install_commit_on_revoke() -> None:
    """Commit open transactions when partitions are revoked, before recovery runs again (idempotent)."""
    patch_once(TransactionManager, "on_partitions_revoked", _commits_on_revoke)


_in_flight: dict[int, int] = {}  # id(ProducerBuffer) -> records its background task is sending


def _tracks_in_flight(original: Any) -> Any:
    async def send_pending(self: ProducerBuffer, fut: Any) -> None:
        _in_flight[id(self)] = _in_flight.get(id(self), 0) + 1
        try:
            await original(self, fut)
        finally:
            _in_flight[id(self)] -= 1

    return send_pending


async def drain_producer_buffer(buffer: ProducerBuffer) -> None:
    """Hand every buffered record to the producer, including one the background task is sending."""
    while True:
        while not buffer.pending.empty():
            await buffer._send_pending(buffer.pending.get_nowait())
        if not _in_flight.get(id(buffer)):
            return
        await asyncio.sleep(0)  # the background task's send has not returned yet


async def begin_ended_transactions(manager: Any, offsets: Any) -> None:
    """Begin the transaction of each producer about to commit offsets whose transaction was ended."""
    app, producer = manager.app, manager.app.producer
    tids = {f"{app.conf.id}-{app.assignor.group_for_topic(tp.topic)}-{tp.partition}" for tp in offsets}
    for tid in sorted(tids):
        txn = getattr(producer, "_transaction_producers", {}).get(tid)
        if txn is not None and txn._txn_manager.state is TransactionState.READY:
            await producer.begin_transaction(tid)


def _drains_buffer_first(original: Any) -> Any:
    async def commit(self: TransactionManager, offsets: Any, start_new_transaction: bool = True) -> bool:
        producer: Any = self.app.producer
        await begin_ended_transactions(self, offsets)
        await drain_producer_buffer(producer.buffer)
        result: bool = await original(self, offsets, start_new_transaction)
        return result

    return commit


def install_buffer_drain_before_commit() -> None:
    """Send buffered changelog records before every transactional commit (idempotent)."""
    patch_once(ProducerBuffer, "_send_pending", _tracks_in_flight)
    patch_once(TransactionManager, "commit", _drains_buffer_first)


_TRANSACTION_GROUPS: dict[str, str] = {}  # changelog topic -> the source topic whose events write it


def transaction_group(changelog_topic: str, source_topic: str) -> None:
    """Declare that a table's changelog is written while processing ``source_topic``'s events."""
    _TRANSACTION_GROUPS[changelog_topic] = source_topic


def _named_by_consuming_stage(original: Any) -> Any:
    def group_for_topic(self: PartitionAssignor, topic: str) -> str:
        return _TRANSACTION_GROUPS.get(topic, topic)

    return group_for_topic


def install_stage_transactional_ids() -> None:
    """One transactional id per (source topic, partition), whichever worker holds it (idempotent)."""
    patch_once(PartitionAssignor, "group_for_topic", _named_by_consuming_stage)


def discard_local_tables(tabledir: Path) -> bool:
    """Remove Faust's local table stores so they are restored from committed changelogs."""
    if not tabledir.exists() or not any(tabledir.iterdir()):
        return False
    shutil.rmtree(tabledir)
    return True
