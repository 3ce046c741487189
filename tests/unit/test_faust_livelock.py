"""Work-around 15: Faust's livelock detector must not crash on a partition aiokafka is still resetting.

Runs Faust's own ``AIOKafkaConsumerThread.verify_event_path`` (as shipped, and patched) on a real
aiokafka ``SubscriptionState`` whose partition was just assigned (no fetch position yet).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from aiokafka.consumer.subscription_state import SubscriptionState
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from rag_streams._faust.livelock import install_livelock_check_guard, position_known

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
