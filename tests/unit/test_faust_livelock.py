"""Work-around 15: Faust's livelock detector must not crash on a partition aiokafka is still resetting.

Runs Faust's own ``AIOKafkaConsumerThread.verify_event_path`` (as shipped, and patched) on a real
aiokafka ``SubscriptionState`` whose partition was just assigned (no fetch position yet).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from rag_streams._faust.livelock import install_livelock_check_guard, position_known

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
