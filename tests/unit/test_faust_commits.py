"""Work-around 14: no partition skips a commit over a stale gap.

Runs Faust's own offset bookkeeping (``_add_gap``, ``_new_offset``, ``_should_commit``) on a
stand-in consumer, as Faust ships it and patched.
"""

from __future__ import annotations

from faust.transport.consumer import Consumer

from rag_streams._faust.commits import install_committed_offsets_forgotten

from support.faust_fakes import Offsets, updates_one_at_a_time


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
