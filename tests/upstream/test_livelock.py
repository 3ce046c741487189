"""Work-around 15: Faust's livelock check crashes on a partition aiokafka is still resetting.

Runs Faust's own ``AIOKafkaConsumerThread.verify_event_path`` (unwrapped) on a real aiokafka
``SubscriptionState`` whose partition was just assigned (no fetch position yet).
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer.subscription_state import SubscriptionState
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

TOPIC_TP = TP("rag.documents.chunks", 0)


def thread_with(position: int | None) -> Any:
    """A consumer thread stand-in whose aiokafka consumer has just been assigned TOPIC_TP."""
    subscriptions = SubscriptionState()
    subscriptions.subscribe(topics={TOPIC_TP.topic})
    subscriptions.assign_from_subscribed({TopicPartition(*TOPIC_TP)})
    if position is not None:
        subscriptions.seek(TopicPartition(*TOPIC_TP), position)
    consumer = SimpleNamespace(_fetcher=SimpleNamespace(_subscriptions=subscriptions))
    app = SimpleNamespace(monitor=SimpleNamespace(), topics=SimpleNamespace(acks_enabled_for=lambda topic: True))
    return SimpleNamespace(
        _consumer=consumer,
        _ensure_consumer=lambda: consumer,
        _verify_aiokafka_event_path=lambda now, tp: False,
        consumer=SimpleNamespace(app=app),
        time_started=0.0,
    )


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
