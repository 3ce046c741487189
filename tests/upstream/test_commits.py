"""Work-around 14: Faust's offset bookkeeping skips every other commit after a transaction marker.

Runs Faust's own ``_add_gap``, ``_new_offset`` (unwrapped) and ``_should_commit`` on a stand-in consumer.
"""

from __future__ import annotations

import inspect

from faust.transport.consumer import Consumer

from support.faust_fakes import updates_one_at_a_time


async def test_faust_alone_skips_every_other_commit_after_a_transaction_marker() -> None:
    """14: after a marker the gap Faust records is the arriving record's own offset, and the next
    commit stops at the already committed offset."""
    commits = await updates_one_at_a_time(inspect.unwrap(Consumer._new_offset))
    assert commits == [1, 3, None, 7, None]  # offsets 4 and 8: committed only a round later
