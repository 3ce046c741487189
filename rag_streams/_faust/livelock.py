"""Work-arounds 15, 21 and 22: Faust's livelock detector under exactly_once and the bulk lane.

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

22. A stream that waits by design is not stalled. The detector logs "Stream has not started
processing TP" / "Stream stopped processing, or is slow for TP" (ERROR) for a partition with
unconsumed records and no event taken for ``stream_processing_timeout`` (300 s), whatever the
reason. The bulk lane (rag_streams.pipeline.lanes) waits while any stage has an update, by design:
under steady updates, a bulk partition behind it was reported as stalled (seen once in a full
bench run, "started 5.54 minutes ago"). :func:`yields_by_design` registers such a topic with a
predicate, "its lane is alive at monotonic time ``now``" (waiting for its turn, or a turn started
or ended within the timeout); while it holds, only the fetch path is verified for its partitions,
as Faust does during recovery. A lane stuck inside a turn for longer is still reported. Faust has
no setting per topic (only the worker-wide timeout). Not reported upstream.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition
from faust.transport.consumer import TransactionManager
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from rag_streams._faust.patch import patch_once

__all__ = [
    "install_livelock_check_guard",
    "install_transaction_commit_times",
    "install_yielding_streams",
    "position_known",
    "waiting_by_design",
    "yields_by_design",
]


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


_YIELDING = "_rag_yielding_streams"  # the app's attribute: topic -> alive(now, timeout)


def yields_by_design(app: Any, topic: str, alive: Callable[[float, float], bool]) -> None:
    """Tell ``app``'s livelock check that ``topic``'s stream waits by design while ``alive(now,
    timeout)`` (monotonic seconds) holds: its partitions' silence is not a stall then."""
    if getattr(app, _YIELDING, None) is None:
        setattr(app, _YIELDING, {})
    getattr(app, _YIELDING)[topic] = alive


def waiting_by_design(app: Any) -> dict[str, Callable[[float, float], bool]]:
    """The topics registered with :func:`yields_by_design` on ``app``."""
    return dict(getattr(app, _YIELDING, None) or {})


def _skips_streams_waiting_by_design(original: Any) -> Any:
    def verify_event_path(self: AIOKafkaConsumerThread, now: float, tp: Any) -> Any:
        alive = waiting_by_design(self.consumer.app).get(tp.topic)
        if alive is not None and alive(now, self.tp_stream_timeout_secs):
            return self.verify_recovery_event_path(now, tp)  # the fetch path only
        return original(self, now, tp)

    return verify_event_path


def install_yielding_streams() -> None:
    """Verify only the fetch path of a stream that waits by design while its lane is alive (idempotent)."""
    patch_once(AIOKafkaConsumerThread, "verify_event_path", _skips_streams_waiting_by_design)
