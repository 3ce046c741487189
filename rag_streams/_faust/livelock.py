"""Work-around 15: Faust's livelock detector skips a partition whose fetch position is not known yet.

Not reported upstream. ``Consumer._commit_livelock_detector`` runs every 2.5 commit intervals
and reads each assigned partition's ``TopicPartitionState.position`` in
``AIOKafkaConsumerThread.verify_event_path``; right after an assignment, before the fetcher has
reset it, aiokafka asserts on a position that is still None, and the AssertionError crashes the
worker. At Faust's default interval (2.8 s) the detector ran every 7 s and rarely hit that
window; at RAG_COMMIT_INTERVAL_S=0.1 it runs every 0.25 s, and a worker joining a rebalance
crashed in the worker-roles test. A partition with no position has no event path to verify yet.
"""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from rag_streams._faust.patch import patch_once

__all__ = ["install_livelock_check_guard", "position_known"]


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
