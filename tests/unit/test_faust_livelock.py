"""Work-arounds 15 and 21: Faust's livelock detector must not crash on a partition aiokafka is still
resetting, nor report partitions committed in transactions as never committed.

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
from rag_streams._faust.livelock import _records_commit_times, install_livelock_check_guard, position_known
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


async def test_with_the_work_around_the_check_no_longer_reports_a_partition_committed_in_a_transaction() -> None:
    install_all()
    assert "rag_streams._faust.livelock._records_commit_times" in installed(TransactionManager.commit)
    thread = thread_with(5)
    state = thread._consumer._fetcher._subscriptions.subscription.assignment.state_value(TopicPartition(*TOPIC_TP))
    state.highwater = 10
    thread.consumer.app.monitor = SimpleNamespace(stream_inbound_time={TOPIC_TP: 399.0})
    thread.tp_stream_timeout_secs = thread.tp_commit_timeout_secs = 300.0
    thread._log_slow_processing_stream, thread._log_slow_processing_commit = Mock(), Mock()
    thread.tp_last_committed_at = {}
    await _records_commit_times(AsyncMock(return_value=True))(
        SimpleNamespace(consumer=SimpleNamespace(_thread=thread)), {TOPIC_TP: 5}
    )
    thread.tp_last_committed_at[TOPIC_TP] = 399.0  # committed a second ago (the check's clock is 400.0)
    inspect.unwrap(AIOKafkaConsumerThread.verify_event_path)(thread, 400.0, TOPIC_TP)
    thread._log_slow_processing_commit.assert_not_called()
