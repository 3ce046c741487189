"""Work-around 13: nothing fetched before a rebalance is processed or acked after it.

Runs Faust's own ``Consumer.getmany`` and ``Consumer.ack`` on a real, unstarted aiokafka-driver
consumer; only the thread call that fetches records is replaced, by one during which the group
rebalances (as it did in tests/integration/test_worker_roles.py).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from rag_streams._faust.fetch import install_fetch_generation_guard, seek_to_committed_or_reset

from support.faust_fakes import (
    TOPIC,
    TP0,
    TP1,
    fetch_consumer,
    fetch_then_pause,
    fetched,
    handed_out_pausing,
    rebalancing_fetch,
)


@pytest.fixture
def consumer() -> Any:
    return fetch_consumer()


async def test_a_batch_fetched_across_a_rebalance_is_dropped(consumer: Any) -> None:
    install_fetch_generation_guard()
    rebalancing_fetch(consumer, range(72, 75), still_rebalancing=True)  # Faust's getmany seeks back itself
    assert await fetched(consumer) == [] and consumer.seeks == ["seek"]


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


async def test_a_dropped_batch_is_fetched_again_through_a_seek_to_the_committed_offsets(consumer: Any) -> None:
    install_fetch_generation_guard()
    rebalancing_fetch(consumer, range(58, 61))
    assert consumer.flow_active  # the rebalance was over when the batch came back: nothing else seeks
    assert await fetched(consumer) == [] and consumer.seeks == ["seek"]


async def test_the_changelog_records_of_a_dropped_batch_are_fetched_again(consumer: Any) -> None:
    """Table recovery had sought and resumed the changelog when the batch came back: the seek to
    the committed offsets leaves changelogs alone, so only a seek to the batch's start refetches them."""
    install_fetch_generation_guard()
    changelog = TP("fetch-test-slots-changelog", 2)
    consumer.app.tables._changelogs[changelog.topic] = SimpleNamespace()  # a table's changelog topic
    assert changelog.topic in consumer.app.tables.changelog_topics
    consumer.assignment = lambda: {TP0, changelog}
    consumer.sought = []

    async def seek(tp: TP, offset: int) -> None:
        consumer.sought.append((tp, offset))

    consumer.seek = seek

    async def perform_seek() -> None:  # asks the broker: slow (1.5 s once), so it comes second
        consumer.seeks.append("seek")
        consumer.sought.append("seek to the committed offsets")

    consumer.perform_seek = perform_seek

    async def getmany(active_partitions: Any, timeout: float) -> Any:
        consumer.app.on_rebalance_start()
        consumer.app.consumer_generation_id = 2
        return {
            TP0: [ConsumerRecord(TOPIC, 0, 58, 0, 0, b"k", b"v", None, 1, 1, [])],
            changelog: [ConsumerRecord(changelog.topic, 2, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in (3, 4, 5)],
        }

    consumer._getmany = getmany
    assert await fetched(consumer) == []
    assert consumer.seeks == ["seek"]  # the stream partition: back to its committed offset
    # the changelog: back to the dropped batch's start, before anything else (recovery reads it now)
    assert consumer.sought == [(changelog, 3), "seek to the committed offsets"]


async def test_recovery_cannot_end_while_a_fetched_batch_is_in_hand(consumer: Any) -> None:
    """The positions of a batch's partitions pass its records when it is fetched: until it is handed
    out (or sought back to), work-around 9 must not take "position past the highwater" for "read"."""
    from rag_streams._faust.recovery import _IN_HAND

    install_fetch_generation_guard()

    async def getmany(active_partitions: Any, timeout: float) -> Any:
        return {TP0: [ConsumerRecord(TOPIC, 0, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in (5, 6)]}

    consumer._getmany = getmany
    seen = [getattr(consumer, _IN_HAND, False) async for _ in consumer.getmany(timeout=0.1)]
    assert seen == [True, True] and getattr(consumer, _IN_HAND) is False
    rebalancing_fetch(consumer, range(7, 9))
    assert await fetched(consumer) == [] and getattr(consumer, _IN_HAND) is False  # dropped, sought back


# --- the seek that ends a rebalance -----------------------------------------------------------

STREAM, CHANGELOG = TopicPartition("src", 1), TopicPartition("app-table-changelog", 1)


class FakeClient:
    """What ``seek_to_committed_or_reset`` calls on aiokafka's consumer, recorded."""

    def __init__(self, committed: dict[TopicPartition, int | None]) -> None:
        self.committed, self.calls = committed, list[tuple[str, Any]]()

    async def seek_to_committed(self) -> dict[TopicPartition, int | None]:
        self.calls.append(("seek_to_committed", None))
        return self.committed

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.calls.append(("seek", (tp, offset)))

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.calls.append(("seek_to_beginning", tps))

    async def seek_to_end(self, *tps: TopicPartition) -> None:
        self.calls.append(("seek_to_end", tps))


def is_stream(topic: str) -> bool:
    return not topic.endswith("-changelog")


async def test_a_stream_partition_with_nothing_committed_goes_back_to_the_start() -> None:
    client = FakeClient({STREAM: None, CHANGELOG: None, TopicPartition("src", 2): 12})
    await seek_to_committed_or_reset(client, reset="earliest", is_stream=is_stream)  # type: ignore[arg-type]
    assert client.calls == [("seek_to_committed", None), ("seek_to_beginning", (STREAM,))]


async def test_committed_zero_is_sought_and_latest_resets_to_the_end() -> None:
    client = FakeClient({STREAM: None, TopicPartition("src", 2): 0})
    await seek_to_committed_or_reset(client, reset="latest", is_stream=is_stream)  # type: ignore[arg-type]
    assert ("seek", (TopicPartition("src", 2), 0)) in client.calls
    assert ("seek_to_end", (STREAM,)) in client.calls


async def test_changelog_partitions_are_left_to_table_recovery() -> None:
    client = FakeClient({CHANGELOG: None, TopicPartition("app-table-changelog", 2): 0})
    await seek_to_committed_or_reset(client, reset="earliest", is_stream=is_stream)  # type: ignore[arg-type]
    assert client.calls == [("seek_to_committed", None)]


async def test_faust_seeks_through_the_patched_thread_call(consumer: Any) -> None:
    install_fetch_generation_guard()
    calls: list[Any] = []

    async def call_thread(fun: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(fun)
        return await fun(*args, **kwargs)

    client = FakeClient({TopicPartition(TOPIC, 0): None, CHANGELOG: None})
    thread = SimpleNamespace(app=consumer.app, call_thread=call_thread, _ensure_consumer=lambda: client)
    await AIOKafkaConsumerThread.seek_to_committed(thread)  # type: ignore[arg-type]
    assert calls == [seek_to_committed_or_reset]
    assert ("seek_to_beginning", (TopicPartition(TOPIC, 0),)) in client.calls  # TOPIC is acked, CHANGELOG not
    assert len(client.calls) == 2


# --- records Faust skips because their partition is not active when their turn comes -------------


async def test_what_getmany_did_not_hand_out_is_sought_back_to(consumer: Any) -> None:
    install_fetch_generation_guard()
    fetch_then_pause(consumer)
    assert await handed_out_pausing(consumer) == [(0, 35), (0, 36)]
    assert consumer.sought == [(TP1, 40)]  # fetched again once the partition is resumed


async def test_nothing_is_sought_when_a_rebalance_came_meanwhile(consumer: Any) -> None:
    install_fetch_generation_guard()
    fetch_then_pause(consumer)
    async for _ in consumer.getmany(timeout=0.1):
        consumer.app.consumer_generation_id = 2  # the rest is dropped; the rebalance's seek refetches it
    assert consumer.sought == []
