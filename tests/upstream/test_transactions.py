"""Work-arounds 2, 5, 6, 7 and 12: Faust's TransactionManager under exactly_once, as it ships.

Runs Faust's own methods (unwrapped, whatever is installed) against stand-ins that record what
happens, and a real ``ProducerBuffer``.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalOperation
from faust.assignor.partition_assignor import PartitionAssignor
from faust.transport.consumer import Consumer, TransactionManager
from faust.types import TP

from support.faust_fakes import REVOKED, Txn, buffered_commit


async def test_faust_alone_sends_in_the_destination_topics_transaction() -> None:
    """2: the producer (transaction) is picked by the destination topic's group, not the source's."""
    sent: list[Any] = []

    async def send(*args: Any, transactional_id: str | None = None) -> None:
        sent.append(transactional_id)

    groups = {"t.documents.raw": 1, "t.documents.chunks": 2}
    manager = SimpleNamespace(
        app=SimpleNamespace(conf=SimpleNamespace(id="app"), assignor=SimpleNamespace(group_for_topic=groups.get)),
        consumer=SimpleNamespace(key_partition=lambda topic, key, partition: 0),
        producer=SimpleNamespace(send=send),
    )
    # while processing an event of t.documents.raw partition 0: Faust does not look at the event
    await inspect.unwrap(TransactionManager.send)(manager, "t.documents.chunks", b"k", b"v", None, None, None)
    assert sent == ["app-2-0"]  # the chunks topic's group: not the transaction of raw's offsets (app-1-0)


def revoking(calls: list[Any]) -> Any:
    async def flush() -> None:
        calls.append("flush")

    async def anything(*args: Any, **kwargs: Any) -> bool:
        calls.append("commit")
        return True

    producer = SimpleNamespace(_transaction_producers={"app-0-0": Txn(True)}, commit_transaction=anything)
    consumer = SimpleNamespace(maybe_wait_for_commit_to_finish=anything, force_commit=anything)
    return SimpleNamespace(
        flush=flush, consumer=consumer, producer=producer, _tps_to_transactional_ids=lambda tps: {"app-0-0"}
    )


async def test_faust_alone_only_flushes_on_revoke() -> None:
    """5: revocation flushes; the open transactions stay open through the rebalance."""
    calls: list[Any] = []
    await inspect.unwrap(TransactionManager.on_partitions_revoked)(revoking(calls), REVOKED)
    assert calls == ["flush"]


async def test_faust_alone_commits_while_changelog_records_wait_in_the_buffer() -> None:
    """6: the commit does not wait for the table changelog records still in Faust's ProducerBuffer."""
    published: list[str] = []
    manager, commits = buffered_commit(published)
    await inspect.unwrap(TransactionManager.commit)(manager, {TP("rag.documents.raw", 0): 10})
    assert commits == [([], True)]  # committed with none of the three records sent


async def test_aiokafka_refuses_to_commit_offsets_outside_a_transaction() -> None:
    """6: what Faust's commit timer hits when a producer's transaction was ended and not begun again."""
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", transactional_id="app-t-0")
    with pytest.raises(IllegalOperation, match="Not in the middle of a transaction"):
        await producer.send_offsets_to_transaction({TopicPartition("t", 0): 10}, "app")


def test_faust_alone_gives_every_stage_of_a_partition_the_same_transactional_id() -> None:
    """7: the leader numbers topic groups by partition count: raw and chunks are in one group, so a
    chunk worker and an embed worker both open ``app-1-0`` for their partition 0."""
    assignor: Any = SimpleNamespace(_topic_groups={"t.documents.raw": 1, "t.documents.chunks": 1})
    group_for_topic: Any = inspect.unwrap(PartitionAssignor.group_for_topic)
    assert group_for_topic(assignor, "t.documents.raw") == group_for_topic(assignor, "t.documents.chunks")


def test_faust_commits_from_a_timer_whatever_the_agents_are_doing() -> None:
    """12: Faust's commit timer commits on its interval; nothing makes it wait for an agent between
    sending an event's outputs and writing its table rows."""
    handler = inspect.getsource(Consumer._commit_handler.fun)  # type: ignore[attr-defined]
    assert "itertimer" in handler and "await self.commit()" in handler
    commit = inspect.getsource(inspect.unwrap(TransactionManager.commit))
    assert "commit_transactions" in commit and "lock" not in commit.lower()
