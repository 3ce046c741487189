"""Work-arounds 5, 6 and 7: no transaction stays open through a rebalance, buffered table
changelog records are in the transaction that commits their events, and transactional ids
do not change when the group leader renumbers topic groups.

Runs Faust's own ``TransactionManager`` methods (patched) against stand-in consumers and
producers that record what happens, and a real ``ProducerBuffer``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiokafka.producer.transaction_manager import TransactionState
from faust.assignor.partition_assignor import PartitionAssignor
from faust.transport.consumer import TransactionManager
from faust.types import TP

from rag_streams._faust.compat import (
    install_buffer_drain_before_commit,
    install_commit_on_revoke,
    install_stage_transactional_ids,
    transaction_group,
)

from support.faust_fakes import REVOKED, Txn, buffered_commit


def stand_in(calls: list[Any]) -> Any:
    async def flush() -> None:
        calls.append("flush")

    async def wait_for_commit() -> bool:
        calls.append("wait for the commit in flight")
        return False

    async def force_commit(topics: Any = None, start_new_transaction: bool = True) -> bool:
        calls.append(("commit acked offsets", start_new_transaction))
        return True

    async def commit_transaction(tid: str) -> None:
        calls.append(("commit open transaction", tid))

    producer = SimpleNamespace(
        # app-0-0 still open (outputs with no offset to commit), app-0-1 committed with its offsets,
        # app-0-2 belongs to a partition that is not revoked.
        _transaction_producers={"app-0-0": Txn(True), "app-0-1": Txn(False), "app-0-2": Txn(True)},
        commit_transaction=commit_transaction,
    )
    consumer = SimpleNamespace(maybe_wait_for_commit_to_finish=wait_for_commit, force_commit=force_commit)
    return SimpleNamespace(
        flush=flush,
        consumer=consumer,
        producer=producer,
        _tps_to_transactional_ids=lambda tps: {f"app-0-{p}" for _, p in tps},
    )


async def test_revoke_commits_acked_offsets_then_every_open_transaction_of_the_revoked_partitions() -> None:
    install_commit_on_revoke()
    calls: list[Any] = []
    await TransactionManager.on_partitions_revoked(stand_in(calls), REVOKED)  # type: ignore[arg-type]
    assert calls == [
        "flush",
        "wait for the commit in flight",
        ("commit acked offsets", False),  # no new transaction begins before the rebalance ends
        ("commit open transaction", "app-0-0"),
    ]


def test_install_is_idempotent() -> None:
    install_commit_on_revoke()
    wrapped = TransactionManager.on_partitions_revoked
    install_commit_on_revoke()
    assert TransactionManager.on_partitions_revoked is wrapped


async def test_commit_sends_every_buffered_record_into_the_transaction_first() -> None:
    install_buffer_drain_before_commit()
    published: list[str] = []
    manager, commits = buffered_commit(published)
    await TransactionManager.commit(manager, {TP("rag.documents.raw", 0): 10}, start_new_transaction=False)
    assert commits == [(["changelog 1", "changelog 2", "changelog 3"], False)]
    assert manager.producer.buffer.pending.empty()


def test_transactional_ids_are_named_by_the_consuming_stage() -> None:
    install_stage_transactional_ids()
    transaction_group("app-accepted-versions-changelog", "t.documents.raw")
    transaction_group("app-embedded-slots-changelog", "t.documents.chunks")
    group_for_topic: Any = PartitionAssignor.group_for_topic
    assignor = SimpleNamespace(_topic_groups={})  # whatever the leader sent: it is not consulted
    groups = {t: group_for_topic(assignor, t) for t in ("t.documents.raw", "t.documents.chunks")}
    assert groups == {"t.documents.raw": "t.documents.raw", "t.documents.chunks": "t.documents.chunks"}
    # a table's changelog records commit with the offsets of the events that wrote them
    assert group_for_topic(assignor, "app-accepted-versions-changelog") == "t.documents.raw"
    assert group_for_topic(assignor, "app-embedded-slots-changelog") == "t.documents.chunks"


async def test_commit_begins_an_ended_transaction_before_committing_offsets() -> None:
    install_buffer_drain_before_commit()
    published: list[str] = []
    manager, commits = buffered_commit(published)
    begun: list[str] = []

    def txn(state: TransactionState) -> Any:
        return SimpleNamespace(_txn_manager=SimpleNamespace(state=state))

    async def begin_transaction(tid: str) -> None:
        begun.append(tid)

    manager.app.producer._transaction_producers = {
        "app-0-0": txn(TransactionState.READY),  # ended on revocation, offsets to commit now
        "app-0-1": txn(TransactionState.IN_TRANSACTION),
        "app-0-2": txn(TransactionState.READY),  # no offsets in this commit: left alone
    }
    manager.app.producer.begin_transaction = begin_transaction
    offsets = {TP("rag.documents.raw", 0): 10, TP("rag.documents.raw", 1): 4}
    await TransactionManager.commit(manager, offsets)
    assert begun == ["app-0-0"] and len(commits) == 1
