"""Work-around 13: nothing fetched before a rebalance is processed or acked after it.

Runs Faust's own ``Consumer.getmany`` and ``Consumer.ack`` on a real, unstarted aiokafka-driver
consumer; only the thread call that fetches records is replaced, by one during which the group
rebalances (as it did in tests/integration/test_worker_roles.py).
"""

from __future__ import annotations

import inspect
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.transport.consumer import Consumer
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from rag_streams.faust_fetch import install_fetch_generation_guard

TOPIC = "src"
TP0 = TP(TOPIC, 0)


@pytest.fixture
def consumer() -> Any:
    app = faust.App("fetch-test", broker="kafka://127.0.0.1:9")
    app.topics._acking_topics.add(TOPIC)
    app.consumer_generation_id = 1
    c = app.consumer
    c._get_active_partitions = lambda: {TP0}
    c.highwater = lambda tp: 100
    return c


def rebalancing_fetch(consumer: Any, offsets: range) -> None:
    """The consumer thread returns records fetched from the old position after a rebalance."""

    async def getmany(active_partitions: Any, timeout: float) -> Any:
        consumer.app.on_rebalance_start()
        consumer.app.consumer_generation_id = 2  # assigned again: the seek is to the committed offset
        return {TP0: [ConsumerRecord(TOPIC, 0, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in offsets]}

    consumer._getmany = getmany


async def fetched(consumer: Any) -> list[Any]:
    return [message async for _, message in consumer.getmany(timeout=0.1)]


async def test_faust_alone_hands_out_a_stale_batch_as_the_new_generations(
    consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Consumer, "_wait_next_records", inspect.unwrap(Consumer._wait_next_records))
    rebalancing_fetch(consumer, range(72, 75))
    assert [(m.offset, m.generation_id) for m in await fetched(consumer)] == [(72, 2), (73, 2), (74, 2)]


async def test_a_batch_fetched_across_a_rebalance_is_dropped(consumer: Any) -> None:
    install_fetch_generation_guard()
    rebalancing_fetch(consumer, range(72, 75))
    assert await fetched(consumer) == []


async def test_a_batch_of_the_same_generation_is_handed_out(consumer: Any) -> None:
    install_fetch_generation_guard()

    async def getmany(active_partitions: Any, timeout: float) -> Any:
        return {TP0: [ConsumerRecord(TOPIC, 0, 5, 0, 0, b"k", b"v", None, 1, 1, [])]}

    consumer._getmany = getmany
    assert [m.offset for m in await fetched(consumer)] == [5]


def message(offset: int, generation: int) -> ConsumerMessage:
    return ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None, tp=TP0, generation_id=generation)


def test_the_ack_of_a_message_fetched_before_the_rebalance_is_ignored(consumer: Any) -> None:
    install_fetch_generation_guard()
    old, current = message(17, generation=1), message(18, generation=1)
    for m in (old, current):
        consumer.track_message(m)
    consumer.app.consumer_generation_id = 2  # rebalanced while 17 was being processed
    old.ack(consumer)
    assert consumer._new_offset(TP0) is None and old not in consumer._unacked_messages
    again = message(17, generation=2)  # the seek fetched it again
    consumer.track_message(again)
    again.ack(consumer)
    assert consumer._new_offset(TP0) == 18
