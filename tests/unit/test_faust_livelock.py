"""Work-arounds 15, 21 and 22: Faust's livelock detector must not crash on a partition aiokafka is
still resetting, nor report partitions committed in transactions as never committed, nor a stream
that waits by design while its lane is alive.

Runs Faust's own ``AIOKafkaConsumerThread.verify_event_path`` (as shipped, and patched) on a real
aiokafka ``SubscriptionState`` whose partition was just assigned (no fetch position yet).
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, Mock

from aiokafka import TopicPartition
from faust.transport.consumer import TransactionManager
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from rag_streams._faust import install_all
from rag_streams._faust.livelock import (
    _records_commit_times,
    install_livelock_check_guard,
    install_yielding_streams,
    position_known,
    yields_by_design,
)
from rag_streams._faust.patch import installed

from support.faust_fakes import TOPIC_TP, thread_with


async def test_patched_skips_a_partition_awaiting_reset_and_checks_one_with_a_position() -> None:
    install_livelock_check_guard()
    assert AIOKafkaConsumerThread.verify_event_path(thread_with(None), 100.0, TOPIC_TP) is None  # type: ignore[arg-type]
    assert not position_known(thread_with(None), TOPIC_TP)
    assert position_known(thread_with(7), TOPIC_TP)
    no_consumer = SimpleNamespace(_consumer=None)
    assert not position_known(no_consumer, TOPIC_TP)


async def test_patched_still_runs_faust_check_once_the_position_is_known() -> None:
    install_livelock_check_guard()
    calls: list[Any] = []
    thread = thread_with(7)
    thread._verify_aiokafka_event_path = lambda now, tp: calls.append(tp) or True  # "error logged": returns
    AIOKafkaConsumerThread.verify_event_path(thread, 100.0, TOPIC_TP)  # type: ignore[arg-type]
    assert calls == [TOPIC_TP]


# --- work-around 21 ---------------------------------------------------------------------------------


async def test_a_transactional_commit_is_recorded_where_the_livelock_check_reads_it() -> None:
    thread = SimpleNamespace(tp_last_committed_at={})
    manager = SimpleNamespace(consumer=SimpleNamespace(_thread=thread))
    original = AsyncMock(return_value=True)
    commit = _records_commit_times(original)
    assert await commit(manager, {TOPIC_TP: 5}, start_new_transaction=False) is True
    original.assert_awaited_once_with(manager, {TOPIC_TP: 5}, start_new_transaction=False)
    assert set(thread.tp_last_committed_at) == {TOPIC_TP}
    original.return_value = False  # a commit that did not happen is not recorded
    thread.tp_last_committed_at.clear()
    await commit(manager, {TOPIC_TP: 6})
    assert thread.tp_last_committed_at == {}


def _behind(inbound_at: float) -> Any:
    """A partition at offset 5 of 10 (records behind its position) whose stream took its last event
    at ``inbound_at``; the livelock check's timeouts 300 s, its log calls recorded."""
    thread = thread_with(5)
    state = thread._consumer._fetcher._subscriptions.subscription.assignment.state_value(TopicPartition(*TOPIC_TP))
    state.highwater = 10
    thread.consumer.app.monitor = SimpleNamespace(stream_inbound_time={TOPIC_TP: inbound_at})
    thread.tp_stream_timeout_secs = thread.tp_commit_timeout_secs = 300.0
    thread._log_slow_processing_stream, thread._log_slow_processing_commit = Mock(), Mock()
    thread.verify_recovery_event_path = Mock()
    return thread


async def test_with_the_work_around_the_check_no_longer_reports_a_partition_committed_in_a_transaction() -> None:
    install_all()
    assert "rag_streams._faust.livelock._records_commit_times" in installed(TransactionManager.commit)
    thread = _behind(inbound_at=399.0)  # its stream took an event a second ago
    thread.tp_last_committed_at = {}
    await _records_commit_times(AsyncMock(return_value=True))(
        SimpleNamespace(consumer=SimpleNamespace(_thread=thread)), {TOPIC_TP: 5}
    )
    thread.tp_last_committed_at[TOPIC_TP] = 399.0  # committed a second ago (the check's clock is 400.0)
    inspect.unwrap(AIOKafkaConsumerThread.verify_event_path)(thread, 400.0, TOPIC_TP)
    thread._log_slow_processing_commit.assert_not_called()


# --- work-around 22 ---------------------------------------------------------------------------------


def _waiting_stream() -> Any:
    """A partition with records behind its position whose stream took its last event 350 s ago."""
    return _behind(inbound_at=50.0)


async def test_a_stream_waiting_by_design_is_not_reported_while_its_lane_is_alive() -> None:
    install_yielding_streams()
    thread, seen = _waiting_stream(), []

    def alive(now: float, within: float) -> bool:
        seen.append((now, within))
        return True

    yields_by_design(thread.consumer.app, TOPIC_TP.topic, alive)
    AIOKafkaConsumerThread.verify_event_path(thread, 400.0, TOPIC_TP)  # type: ignore[arg-type]
    thread._log_slow_processing_stream.assert_not_called()
    thread.verify_recovery_event_path.assert_called_once_with(400.0, TOPIC_TP)  # the fetch path is still verified
    assert seen == [(400.0, 300.0)]  # the check's clock and Faust's stream timeout


async def test_a_stream_whose_lane_is_not_alive_is_still_reported() -> None:
    install_all()
    thread = _waiting_stream()
    yields_by_design(thread.consumer.app, TOPIC_TP.topic, lambda now, within: False)  # stuck inside a turn
    AIOKafkaConsumerThread.verify_event_path(thread, 400.0, TOPIC_TP)  # type: ignore[arg-type]
    thread._log_slow_processing_stream.assert_called_once()


async def test_other_topics_and_other_apps_are_checked_as_faust_does() -> None:
    install_all()
    thread, other_app = _waiting_stream(), _waiting_stream()
    yields_by_design(thread.consumer.app, "rag.documents.chunks.bulk", lambda now, within: True)
    AIOKafkaConsumerThread.verify_event_path(thread, 400.0, TOPIC_TP)  # type: ignore[arg-type]
    AIOKafkaConsumerThread.verify_event_path(other_app, 400.0, TOPIC_TP)  # type: ignore[arg-type]
    thread._log_slow_processing_stream.assert_called_once()
    other_app._log_slow_processing_stream.assert_called_once()
