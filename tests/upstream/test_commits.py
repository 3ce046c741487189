"""Work-around 14: Faust's offset bookkeeping skips every other commit after a transaction marker.

Runs Faust's own ``_add_gap``, ``_new_offset`` (unwrapped) and ``_should_commit`` on a stand-in consumer.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from typing import Any

from faust.transport.consumer import Consumer


class Offsets:
    """The offset bookkeeping of Faust's Consumer, driven by Faust's own methods."""

    def __init__(self) -> None:
        from intervaltree import IntervalTree

        self._acked: dict[Any, list[int]] = defaultdict(list)
        self._acked_index: dict[Any, set[int]] = defaultdict(set)
        self._gap: dict[Any, Any] = defaultdict(IntervalTree)
        self._committed_offset: dict[Any, int | None] = defaultdict(lambda: None)
        self._read_offset: dict[Any, int | None] = defaultdict(lambda: None)

    async def receive(self, tp: Any, offset: int) -> None:
        """What Consumer._drain_messages does for a record: a skipped offset before it is a gap."""
        r_offset = self._read_offset[tp]
        if r_offset is not None and offset - r_offset > 1:
            await Consumer._add_gap(self, tp, r_offset + 1, offset)  # type: ignore[arg-type]
        self._read_offset[tp] = offset

    def ack(self, tp: Any, offset: int) -> None:
        self._acked_index[tp].add(offset)
        self._acked[tp].append(offset)

    def commit(self, tp: Any, new_offset: Any) -> int | None:
        """Consumer._filter_committable_offsets and _commit_offsets for one partition."""
        offset = new_offset(self, tp)
        if offset is not None and Consumer._should_commit(self, tp, offset):  # type: ignore[arg-type]
            self._committed_offset[tp] = offset
            return offset
        return None


async def updates_one_at_a_time(new_offset: Any) -> list[int | None]:
    """A transactional input partition, one record per transaction: records at even offsets,
    each followed by its commit marker (which a read_committed consumer never sees)."""
    book, tp = Offsets(), ("chunks", 0)
    await book.receive(tp, 0)
    book.ack(tp, 0)
    commits = [book.commit(tp, new_offset)]
    for record in (2, 4, 6, 8):
        await book.receive(tp, record)
        book.ack(tp, record)
        commits.append(book.commit(tp, new_offset))
    return commits


async def test_faust_alone_skips_every_other_commit_after_a_transaction_marker() -> None:
    """14: after a marker the gap Faust records is the arriving record's own offset, and the next
    commit stops at the already committed offset."""
    commits = await updates_one_at_a_time(inspect.unwrap(Consumer._new_offset))
    assert commits == [1, 3, None, 7, None]  # offsets 4 and 8: committed only a round later
