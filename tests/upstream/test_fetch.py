"""Work-around 13: Faust hands out records fetched before a rebalance, aiokafka leaves a partition
with nothing committed where it is, and Faust skips the records of a partition paused meanwhile.

Runs Faust's own ``Consumer.getmany`` (unwrapped) on a real, unstarted aiokafka-driver consumer;
only the thread call that fetches records is replaced.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.consumer import Consumer

from support.faust_fakes import fetch_consumer, fetch_then_pause, fetched, handed_out_pausing, rebalancing_fetch


@pytest.fixture
def consumer() -> Any:
    return fetch_consumer()


def unpatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faust's own fetching, whatever work-around 13 installed in this process."""
    for name in ("_wait_next_records", "getmany"):
        monkeypatch.setattr(Consumer, name, inspect.unwrap(getattr(Consumer, name)))


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


async def test_faust_alone_skips_the_records_of_a_partition_paused_meanwhile(
    consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    unpatched(monkeypatch)
    fetch_then_pause(consumer)
    assert (await handed_out_pausing(consumer), consumer.sought) == ([(0, 35), (0, 36)], [])  # 40, 41: gone
