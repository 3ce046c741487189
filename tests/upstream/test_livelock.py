"""Work-arounds 15, 21 and 22: Faust's livelock check crashes on a partition aiokafka is still
resetting, reports partitions committed only in transactions as never committed, and reports a
stream that waits by design (the bulk lane behind updates) as stalled.

Runs Faust's own ``AIOKafkaConsumerThread.verify_event_path`` (unwrapped) on a real aiokafka
``SubscriptionState`` whose partition was just assigned (no fetch position yet).
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest
from aiokafka import TopicPartition
from faust.transport.consumer import TransactionManager
from faust.transport.drivers.aiokafka import (
    SLOW_PROCESSING_NO_COMMIT_SINCE_START,
    SLOW_PROCESSING_STREAM_IDLE,
    SLOW_PROCESSING_STREAM_IDLE_SINCE_START,
    AIOKafkaConsumerThread,
)

from support.faust_fakes import TOPIC_TP, thread_with


async def test_aiokafka_asserts_on_the_position_of_a_partition_awaiting_reset() -> None:
    state = thread_with(None)._consumer._fetcher._subscriptions.subscription.assignment.state_value(
        TopicPartition(*TOPIC_TP)
    )
    assert not state.has_valid_position
    with pytest.raises(AssertionError):
        _ = state.position


async def test_faust_alone_crashes_verifying_a_partition_awaiting_reset() -> None:
    """15: Faust reads the position of a partition aiokafka has not positioned yet."""
    with pytest.raises(AssertionError):
        inspect.unwrap(AIOKafkaConsumerThread.verify_event_path)(thread_with(None), 100.0, TOPIC_TP)


# --- work-around 21: commits made in transactions ------------------------------------------------


async def test_faust_alone_does_not_record_transactional_commits() -> None:
    """21: under exactly_once Faust commits through TransactionManager.commit, which leaves the
    consumer thread's ``tp_last_committed_at`` (what the livelock check reads) untouched."""
    thread = SimpleNamespace(tp_last_committed_at={})
    manager = SimpleNamespace(
        producer=SimpleNamespace(commit_transactions=AsyncMock()),
        app=SimpleNamespace(conf=SimpleNamespace(id="app"), assignor=SimpleNamespace(group_for_topic=lambda t: t)),
        consumer=SimpleNamespace(_thread=thread),
    )
    assert await inspect.unwrap(TransactionManager.commit)(manager, {TOPIC_TP: 5}) is True
    manager.producer.commit_transactions.assert_awaited_once()
    assert thread.tp_last_committed_at == {}


async def test_faust_alone_reports_a_partition_committed_only_in_transactions() -> None:
    """21: a partition with unconsumed records and no entry in ``tp_last_committed_at`` is reported as
    never committed once the soft timeout has passed since the worker started."""
    thread = _behind(position=5, highwater=10)
    inspect.unwrap(AIOKafkaConsumerThread.verify_event_path)(thread, 400.0, TOPIC_TP)
    assert thread._log_slow_processing_commit.call_args.args[0] == SLOW_PROCESSING_NO_COMMIT_SINCE_START


# --- work-around 22: a stream waiting by design ------------------------------------------------------


async def test_faust_alone_reports_a_stream_waiting_behind_other_work_as_stalled() -> None:
    """22: records behind the fetch position and no event taken from the partition for the stream
    timeout: Faust logs a stalled stream, whatever makes the stream wait; there is no setting per
    topic, only the worker-wide ``stream_processing_timeout``."""
    thread = _behind(position=5, highwater=10)
    thread.consumer.app.monitor.stream_inbound_time[TOPIC_TP] = 50.0  # last event taken 350 s ago
    inspect.unwrap(AIOKafkaConsumerThread.verify_event_path)(thread, 400.0, TOPIC_TP)
    assert thread._log_slow_processing_stream.call_args.args[0] == SLOW_PROCESSING_STREAM_IDLE
    never = _behind(position=5, highwater=10)
    never.consumer.app.monitor.stream_inbound_time.clear()  # no event taken since the worker started
    inspect.unwrap(AIOKafkaConsumerThread.verify_event_path)(never, 400.0, TOPIC_TP)
    assert never._log_slow_processing_stream.call_args.args[0] == SLOW_PROCESSING_STREAM_IDLE_SINCE_START


def _behind(position: int, highwater: int) -> Any:
    thread = thread_with(position)
    state = thread._consumer._fetcher._subscriptions.subscription.assignment.state_value(TopicPartition(*TOPIC_TP))
    state.highwater = highwater
    thread.consumer.app.monitor = SimpleNamespace(stream_inbound_time={TOPIC_TP: 399.0})
    thread.tp_stream_timeout_secs = thread.tp_commit_timeout_secs = 300.0
    thread.tp_last_committed_at = {}
    thread._log_slow_processing_stream = Mock()
    thread._log_slow_processing_commit = Mock()
    return thread
