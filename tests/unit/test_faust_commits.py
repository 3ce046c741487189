"""Work-around 14: no partition skips a commit over a stale gap.

Runs Faust's own offset bookkeeping (``_add_gap``, ``_new_offset``, ``_should_commit``) on a
stand-in consumer, as Faust ships it and patched.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from faust.transport.consumer import Consumer

from rag_streams._faust.commits import install_committed_offsets_forgotten


# --- work-around 14 --------------------------------------------------------------------------
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


async def test_patched_every_acked_record_is_committed_in_its_round() -> None:
    install_committed_offsets_forgotten()
    commits = await updates_one_at_a_time(Consumer._new_offset)
    assert commits == [1, 3, 5, 7, 9]


async def test_patched_commits_only_records_acked_in_order() -> None:
    """Records fetched together, acked one by one (as every stage acks): never past one in flight."""
    install_committed_offsets_forgotten()
    book, tp = Offsets(), ("chunks", 0)
    for record in (0, 2, 4):
        await book.receive(tp, record)
    commits = []
    for record in (0, 2, 4):
        commits.append(book.commit(tp, Consumer._new_offset))  # the next one is still in flight
        book.ack(tp, record)
        commits.append(book.commit(tp, Consumer._new_offset))
    assert commits == [None, 1, None, 3, None, 5]
