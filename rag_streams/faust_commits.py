"""Work-arounds 14 and 15: how soon a commit makes a stage's output visible.

Work-around 14: the transactions of one commit end concurrently, not one after another.

Not reported upstream. Under ``exactly_once`` Faust keeps one transactional producer per
(consuming stage, partition) and its commit ends their transactions in turn
(``faust.transport.drivers.aiokafka.Producer.commit_transactions``: for each transactional id,
``send_offsets_to_transaction``, then ``commit_transaction``, then ``begin_transaction``, each a
broker round trip). With three stages on four partitions a commit ran 12 of these in a row; on
this project's development machine that took 100-170 ms, longer than the 0.1 s commit interval
fresh results need, and every emit waits for a commit in progress (work-around 12's gate), so the
embed stage's model sat idle behind it. Each transactional id has its own producer, connection
and lock, and its transaction is an atomic unit of its own (its outputs and its input offsets),
so the ids are independent: ending them concurrently changes only how long the commit takes.
Every id is attempted, as in Faust's loop; the first error is raised after all have ended.

Work-around 15: offsets at or below the committed one are forgotten before the next commit
offset is computed. Not reported upstream (the gap tracking it corrects came with
faust-streaming#312). A read_committed consumer of a transactional topic never sees the
transaction markers, so Faust records the offsets it skipped as a "gap" that counts as acked
(``Consumer._add_gap``). ``_add_gap`` clamps the gap's start to ``committed + 1`` although Faust's
committed offset is already the next offset to read, so after a marker the gap recorded is the
arriving record's own offset; ``_new_offset`` leaves that entry behind once the record is
committed, and at the next commit puts the already committed offset back among the acked ones and
stops there: the partition commits nothing that round. Under exactly_once its transaction, which
holds the stage's outputs, then stays open one more commit interval: measured on the embed -> index
hop with one document updated at a time, every other update waited two intervals (5.2-5.4 s
instead of 2.2-2.8 s at Faust's 2.8 s interval).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import Producer

from rag_streams.faust_patch import patch_once

__all__ = ["install_committed_offsets_forgotten", "install_concurrent_transaction_commits"]


def _concurrently(original: Any) -> Any:
    async def commit_transactions(
        self: Producer,
        tid_to_offset_map: Mapping[str, Mapping[Any, int]],
        group_id: str,
        start_new_transaction: bool = True,
    ) -> None:
        if len(tid_to_offset_map) < 2:
            await original(self, tid_to_offset_map, group_id, start_new_transaction)
            return
        results = await asyncio.gather(
            *(
                original(self, {tid: offsets}, group_id, start_new_transaction)
                for tid, offsets in tid_to_offset_map.items()
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    return commit_transactions


def install_concurrent_transaction_commits() -> None:
    """End a commit's transactions concurrently (idempotent)."""
    patch_once(Producer, "commit_transactions", _concurrently)


def _forgets_what_is_committed(original: Any) -> Any:
    def new_offset(self: Consumer, tp: Any) -> int | None:
        committed = self._committed_offset[tp]
        if committed is not None:
            gap = self._gap[tp]
            if gap:
                gap.chop(0, committed)  # offsets below the committed one: committed already
            acked = self._acked[tp]
            if acked and min(acked) < committed:
                self._acked_index[tp].difference_update(o for o in acked if o < committed)
                acked[:] = [o for o in acked if o >= committed]
        result: int | None = original(self, tp)
        return result

    return new_offset


def install_committed_offsets_forgotten() -> None:
    """Drop acked offsets and gaps below the committed offset before each commit (idempotent)."""
    patch_once(Consumer, "_new_offset", _forgets_what_is_committed)
