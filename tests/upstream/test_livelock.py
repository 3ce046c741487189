"""Work-around 15: Faust's livelock check crashes on a partition aiokafka is still resetting.

Runs Faust's own ``AIOKafkaConsumerThread.verify_event_path`` (unwrapped) on a real aiokafka
``SubscriptionState`` whose partition was just assigned (no fetch position yet).
"""

from __future__ import annotations

import inspect

import pytest
from aiokafka import TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

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
