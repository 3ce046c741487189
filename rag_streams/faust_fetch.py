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

:func:`install_fetch_generation_guard` discards a batch fetched across a rebalance (the seek
fetches it again) and ignores the ack of a message fetched in an earlier generation.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.transport.consumer import Consumer

from rag_streams.faust_acks import withhold_ack

__all__ = ["install_fetch_generation_guard"]
log = logging.getLogger(__name__)


def _rebalance_mark(app: Any) -> tuple[Any, Any]:
    return app.consumer_generation_id, app.rebalancing_count


def _discards_batches_fetched_across_a_rebalance(original: Any) -> Any:
    async def wait_next_records(self: Consumer, timeout: float) -> Any:
        before = _rebalance_mark(self.app)
        records, active_partitions = await original(self, timeout)
        if records and _rebalance_mark(self.app) != before:
            log.debug("dropped a batch fetched before the rebalance (work-around 13): %d partitions", len(records))
            return {}, active_partitions
        return records, active_partitions

    wait_next_records.__wrapped__ = original  # type: ignore[attr-defined]
    return wait_next_records


def _ignores_acks_of_earlier_generations(original: Any) -> Any:
    def ack(self: Consumer, message: Any) -> bool:
        fetched_in = getattr(message, "generation_id", None)
        if fetched_in is not None and fetched_in != self.app.consumer_generation_id:
            withhold_ack(self, message)  # its offset is fetched and acked again
            return False
        result: bool = original(self, message)
        return result

    ack.__wrapped__ = original  # type: ignore[attr-defined]
    return ack


def install_fetch_generation_guard() -> None:
    """Patch Faust's consumer (idempotent)."""
    if not hasattr(Consumer._wait_next_records, "__wrapped__"):
        Consumer._wait_next_records = _discards_batches_fetched_across_a_rebalance(  # type: ignore[method-assign]
            Consumer._wait_next_records
        )
    if not hasattr(Consumer.ack, "__wrapped__"):
        Consumer.ack = _ignores_acks_of_earlier_generations(Consumer.ack)  # type: ignore[method-assign]
