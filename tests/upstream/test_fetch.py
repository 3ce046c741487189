"""Work-around 13: Faust hands out records fetched before a rebalance, aiokafka leaves a partition
with nothing committed where it is, and Faust skips the records of a partition paused meanwhile.

Runs Faust's own ``Consumer.getmany`` (unwrapped) on a real, unstarted aiokafka-driver consumer;
only the thread call that fetches records is replaced.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from faust.transport.consumer import Consumer
from faust.types import TP

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
    c.seeks = []

    async def perform_seek() -> None:  # the seek to the committed offsets needs a started client
        c.seeks.append("seek")

    c.perform_seek = perform_seek
    return c


def rebalancing_fetch(consumer: Any, offsets: range, *, still_rebalancing: bool = False) -> None:
    """The consumer thread returns records fetched from the old position after a rebalance."""

    async def getmany(active_partitions: Any, timeout: float) -> Any:
        consumer.app.on_rebalance_start()
        if still_rebalancing:
            consumer.stop_flow()  # as on_partitions_revoked does; resumed after table recovery
        consumer.app.consumer_generation_id = 2  # assigned again: the seek is to the committed offset
        return {TP0: [ConsumerRecord(TOPIC, 0, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in offsets]}

    consumer._getmany = getmany


def unpatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faust's own fetching, whatever work-around 13 installed in this process."""
    for name in ("_wait_next_records", "getmany"):
        monkeypatch.setattr(Consumer, name, inspect.unwrap(getattr(Consumer, name)))


async def fetched(consumer: Any) -> list[Any]:
    return [message async for _, message in consumer.getmany(timeout=0.1)]


async def test_faust_alone_hands_out_a_stale_batch_as_the_new_generations(
    consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    unpatched(monkeypatch)
    rebalancing_fetch(consumer, range(72, 75))
    assert [(m.offset, m.generation_id) for m in await fetched(consumer)] == [(72, 2), (73, 2), (74, 2)]


STREAM = TopicPartition("src", 1)


async def test_aiokafka_alone_leaves_a_partition_with_nothing_committed_where_it_is() -> None:
    """Pins aiokafka's ``seek_to_committed``: no seek for a committed offset of None or 0."""
    seeks: list[tuple[TopicPartition, int]] = []
    committed = {STREAM: None, TopicPartition("src", 2): 0, TopicPartition("src", 3): 7}

    async def committed_offset(tp: TopicPartition) -> int | None:
        return committed[tp]

    fake = SimpleNamespace(
        _subscription=SimpleNamespace(assigned_partitions=lambda: set(committed)),
        committed=committed_offset,
        _fetcher=SimpleNamespace(seek_to=lambda tp, offset: seeks.append((tp, offset))),
    )
    assert await AIOKafkaConsumer.seek_to_committed(fake) == committed  # type: ignore[arg-type]
    assert seeks == [(TopicPartition("src", 3), 7)]


TP1 = TP(TOPIC, 1)


def fetch_then_pause(consumer: Any) -> None:
    """A batch for two partitions; the second is paused by the time getmany reaches it (recovery
    resuming partitions in its own order, as in the worker-roles test)."""

    async def getmany(active_partitions: Any, timeout: float) -> Any:
        return {
            TP0: [ConsumerRecord(TOPIC, 0, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in (35, 36)],
            TP1: [ConsumerRecord(TOPIC, 1, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in (40, 41)],
        }

    active = {TP0, TP1}
    consumer._get_active_partitions = lambda: active
    consumer._getmany = getmany
    consumer.assignment = lambda: {TP0, TP1}
    consumer.sought = []

    async def seek(tp: TP, offset: int) -> None:
        consumer.sought.append((tp, offset))

    consumer.seek = seek


async def handed_out_pausing(consumer: Any) -> list[tuple[int, int]]:
    out = []
    async for tp, message in consumer.getmany(timeout=0.1):
        out.append((tp.partition, message.offset))
        consumer._get_active_partitions().discard(TP1)  # paused while the first record is processed
    return out


async def test_faust_alone_skips_the_records_of_a_partition_paused_meanwhile(
    consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    unpatched(monkeypatch)
    fetch_then_pause(consumer)
    assert (await handed_out_pausing(consumer), consumer.sought) == ([(0, 35), (0, 36)], [])  # 40, 41: gone
