"""Work-arounds 15 and 21: Faust's livelock detector under exactly_once.

15. The detector skips a partition whose fetch position is not known yet.

Not reported upstream. ``Consumer._commit_livelock_detector`` runs every 2.5 commit intervals
and reads each assigned partition's ``TopicPartitionState.position`` in
``AIOKafkaConsumerThread.verify_event_path``; right after an assignment, before the fetcher has
reset it, aiokafka asserts on a position that is still None, and the AssertionError crashes the
worker. At Faust's default interval (2.8 s) the detector ran every 7 s and rarely hit that
window; at RAG_COMMIT_INTERVAL_S=0.1 it runs every 0.25 s, and a worker joining a rebalance
crashed in the worker-roles test. A partition with no position has no event path to verify yet.

21. Commits made in transactions count as commits. The detector logs "Has not committed TP ... at
all since worker start" (ERROR, every few seconds) for a partition with unconsumed records once
``broker_commit_livelock_soft_timeout`` (300 s) has passed without an entry in the consumer
thread's ``tp_last_committed_at``; only the plain ``AIOKafkaConsumerThread._commit`` writes it, and
under exactly_once every commit goes through ``TransactionManager.commit`` instead. So any
exactly_once worker with a backlog for more than five minutes (a bulk load) logged a stall that was
not there. Not reported upstream.
"""

from __future__ import annotations

import time
from typing import Any

from aiokafka import TopicPartition
from faust.transport.consumer import TransactionManager
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from rag_streams._faust.patch import patch_once

__all__ = ["install_livelock_check_guard", "install_transaction_commit_times", "position_known"]


def position_known(thread: Any, tp: Any) -> bool:
    """Whether aiokafka knows the partition's fetch position (False while it awaits a reset)."""
    consumer = thread._consumer
    subscription = consumer._fetcher._subscriptions.subscription if consumer is not None else None
    if subscription is None:
        return False
    state = subscription.assignment.state_value(TopicPartition(tp.topic, tp.partition))
    return state is not None and bool(state.has_valid_position)


def _skips_partitions_without_position(original: Any) -> Any:
    def verify_event_path(self: AIOKafkaConsumerThread, now: float, tp: Any) -> Any:
        if not position_known(self, tp):
            return None
        return original(self, now, tp)

    return verify_event_path


def install_livelock_check_guard() -> None:
    """Verify only partitions with a known position (idempotent)."""
    patch_once(AIOKafkaConsumerThread, "verify_event_path", _skips_partitions_without_position)


def _records_commit_times(original: Any) -> Any:
    async def commit(self: TransactionManager, offsets: Any, *args: Any, **kwargs: Any) -> Any:
        committed = await original(self, offsets, *args, **kwargs)
        thread = getattr(getattr(self, "consumer", None), "_thread", None)
        times = getattr(thread, "tp_last_committed_at", None)
        if committed and times is not None:
            now = time.monotonic()
            times.update(dict.fromkeys(offsets, now))
        return committed

    return commit


def install_transaction_commit_times() -> None:
    """Record the partitions a transactional commit committed, as the plain commit does (idempotent)."""
    patch_once(TransactionManager, "commit", _records_commit_times)
