"""Work-around 13: nothing fetched before a rebalance is processed or acked after it.

Faust's fetcher waits for a batch of records (``Consumer._wait_next_records``, a call into the
consumer thread) and reads the consumer generation *after* that wait. When the group rebalanced
during the wait, records fetched from the old position are tagged with the new generation and
handed to the streams after the seek to the committed offset. The first of them moves the
partition's read offset past the range the seek is about to fetch again: Faust records that
range as a "gap" (as if it were transaction markers) and drops the refetched messages as already
read, and the next commit skips them. Found by tests/integration/test_worker_roles.py: the index
worker, kept its partitions through the rebalance when an embed worker left, and never indexed
offsets 17-71 of one embeddings partition, committed past them.

Messages whose processing straddles a rebalance are the other half: a batch taken before it
and acked after it would count as done for the new generation, whose seek fetches the same
offsets again. Their acks are ignored; the refetched copies are processed (a replay, which the
stages' tables drop) and acked instead.

:func:`install_fetch_generation_guard` discards a batch fetched across a rebalance and seeks
back to the committed offsets (so the batch is fetched again), and ignores the ack of a message
fetched in an earlier generation.

Both halves, and Faust's own "generation changed: cancel the rest of this batch", count on the
seek to the committed offset that ends each rebalance to fetch again what was dropped. But
aiokafka's ``seek_to_committed`` leaves a partition with no committed offset (or offset 0) where
it is: a partition kept through a rebalance before its first commit continued from the dropped
batch's end, and the index worker committed past records it had never seen (1 run in 5 of the
worker-roles test: embeddings offsets 58-60, none committed before the rebalance). The patched
seek moves such a stream partition to the position ``auto_offset_reset`` gives a partition with
no committed offset (the start, in this app), as a new consumer would; changelog partitions,
which have no committed offsets and are positioned by table recovery, are left alone.

A dropped batch may also hold records of changelog partitions that the new generation's table
recovery had already sought and resumed: those are sought back to the batch's first record, or
the tables would be restored without them. That seek comes first (it is local; the seek to the
committed offsets asks the broker and took 1.5 s once), and until the batch is handed out or
sought back to, work-around 9 does not end a recovery (:func:`batch_in_hand`): the positions of
its partitions are past records the tables have not seen.

Last, Faust's ``getmany`` skips, without a word, fetched records of a partition that is not active
when their turn comes; their position is gone, and only a seek fetches them again. After the final
seek of a rebalance, the chunk worker fetched raw offsets 35-44 while recovery resumed its
partitions, skipped them, and committed past them. Whatever a fetch returned and getmany did not
hand out, with no rebalance since, is sought back to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from rag_streams._faust.acks import withhold_ack
from rag_streams._faust.patch import patch_once
from rag_streams._faust.recovery import batch_in_hand

__all__ = ["install_fetch_generation_guard"]
log = logging.getLogger(__name__)


_FETCHED = "_rag_fetched"  # on the consumer: (rebalance mark, records) of the batch being handed out


def _rebalance_mark(app: Any) -> tuple[Any, Any]:
    return app.consumer_generation_id, app.rebalancing_count


def _discards_batches_fetched_across_a_rebalance(original: Any) -> Any:
    async def wait_next_records(self: Consumer, timeout: float) -> Any:
        before = _rebalance_mark(self.app)
        records, active_partitions = await original(self, timeout)
        if records:
            batch_in_hand(self, True)  # until getmany has handed it out or sought back (work-around 9 waits)
        if records and _rebalance_mark(self.app) != before:
            log.debug("dropped a batch fetched before the rebalance (work-around 13): %d partitions", len(records))
            await _changelogs_back_to(self, records)  # first: table recovery may be reading them now
            if self.flow_active:  # rebalanced and resumed already: nothing else will seek (inactive: getmany does)
                await self.perform_seek()
            return {}, active_partitions
        setattr(self, _FETCHED, (before, records))  # what getmany is to hand out (see below)
        return records, active_partitions

    return wait_next_records


async def _changelogs_back_to(consumer: Consumer, records: Any) -> None:
    """Seek the changelog partitions of a dropped batch back to its first record. The seek to the
    committed offsets leaves them alone (table recovery positions them), and recovery may have
    sought them before the batch came back: its records would be lost to the tables, and
    work-around 9 would end the recovery without them (the worker-roles test at 0.1 s commits:
    an embed worker restored its tables without the last slots the stopped worker had
    committed, and embedded those chunks again: read_committed duplicates)."""
    changelogs = consumer.app.tables.changelog_topics
    dropped = {tp: batch[0].offset for tp, batch in records.items() if batch and tp.topic in changelogs}
    if not dropped:
        return
    assigned = consumer.assignment()
    for tp, offset in dropped.items():
        if tp in assigned:
            log.debug("changelog %s fetched again from %d (work-around 13)", tp, offset)
            await consumer.seek(tp, offset)


def _fetches_again_what_it_did_not_hand_out(original: Any) -> Any:
    async def getmany(self: Consumer, timeout: float) -> Any:
        setattr(self, _FETCHED, None)
        batch_in_hand(self, False)  # the previous call's generator may have been left unfinished
        handed: dict[Any, int] = {}  # tp -> offset of the last record handed out
        try:
            async for tp, message in original(self, timeout):
                handed[tp] = message.offset
                yield tp, message
            fetched = getattr(self, _FETCHED, None)
            if fetched is None or _rebalance_mark(self.app) != fetched[0]:
                return  # nothing fetched, or a rebalance came: its seek fetches everything again
            for tp, records in fetched[1].items():
                rest = [r.offset for r in records if r.offset > handed.get(tp, -1)]
                if rest and tp in self.assignment():  # skipped (its partition paused meanwhile): fetch it again
                    log.debug(
                        "fetching %s again from %d: Faust skipped %d records (work-around 13)", tp, rest[0], len(rest)
                    )
                    await self.seek(tp, rest[0])
        finally:
            batch_in_hand(self, False)

    return getmany


def _ignores_acks_of_earlier_generations(original: Any) -> Any:
    def ack(self: Consumer, message: Any) -> bool:
        fetched_in = getattr(message, "generation_id", None)
        if fetched_in is not None and fetched_in != self.app.consumer_generation_id:
            withhold_ack(self, message)  # its offset is fetched and acked again
            return False
        result: bool = original(self, message)
        return result

    return ack


async def seek_to_committed_or_reset(
    client: AIOKafkaConsumer, *, reset: str, is_stream: Callable[[str], bool]
) -> dict[TopicPartition, int | None]:
    """aiokafka's ``seek_to_committed``, plus a seek for each stream partition it leaves in place:
    to 0 when 0 is committed, to where ``reset`` says when nothing is. Runs on the consumer thread."""
    committed: dict[TopicPartition, int | None] = await client.seek_to_committed()
    for tp, offset in committed.items():
        if offset == 0 and is_stream(tp.topic):
            client.seek(tp, 0)
    uncommitted = [tp for tp, offset in committed.items() if offset is None and is_stream(tp.topic)]
    if uncommitted and reset == "earliest":
        await client.seek_to_beginning(*uncommitted)
    elif uncommitted and reset == "latest":
        await client.seek_to_end(*uncommitted)
    return committed


def _seeks_every_stream_partition(original: Any) -> Any:
    async def seek_to_committed(self: AIOKafkaConsumerThread) -> Any:
        app = self.app

        def is_stream(topic: str) -> bool:
            return topic not in app.tables.changelog_topics and bool(app.topics.acks_enabled_for(topic))

        reset = app.conf.consumer_auto_offset_reset
        return await self.call_thread(
            seek_to_committed_or_reset, self._ensure_consumer(), reset=reset, is_stream=is_stream
        )

    return seek_to_committed


def install_fetch_generation_guard() -> None:
    """Patch Faust's consumer (idempotent)."""
    patch_once(AIOKafkaConsumerThread, "seek_to_committed", _seeks_every_stream_partition)
    patch_once(Consumer, "_wait_next_records", _discards_batches_fetched_across_a_rebalance)
    patch_once(Consumer, "ack", _ignores_acks_of_earlier_generations)
    patch_once(Consumer, "getmany", _fetches_again_what_it_did_not_hand_out)
