"""Stand-ins for Faust's and aiokafka's consumers, shared by tests/unit/test_faust_*.py (the
work-arounds, patched) and tests/upstream/ (the same Faust code, as it ships).

Nothing here imports rag_streams: the upstream tests run Faust's own code, unpatched.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.consumer.subscription_state import SubscriptionState
from aiokafka.structs import ConsumerRecord
from faust.transport.consumer import Consumer
from faust.transport.producer import ProducerBuffer
from faust.types import TP
from mode.utils.queues import FlowControlEvent, FlowControlQueue

# --- work-around 4: table recovery resuming the streams -------------------------------------------

STREAM_TP = ("rag.documents.raw", 0)


class StubConsumer:
    def __init__(self, queue: FlowControlQueue[str]) -> None:
        self.queue = queue
        self.active: set[Any] = set()
        self.seeks = 0

    def assignment(self) -> set[Any]:
        return {STREAM_TP}

    def resume_partitions(self, tps: set[Any]) -> None:
        self.active |= set(tps)

    async def perform_seek(self) -> None:
        self.seeks += 1
        if STREAM_TP in self.active:  # the fetcher delivers from partitions already resumed
            self.queue.put_nowait("message fetched during the seek")

    def resume_flow(self) -> None:
        pass


def stub_recovery() -> tuple[Any, StubConsumer, FlowControlQueue[str]]:
    flow_control = FlowControlEvent()
    flow_control.suspend()  # as during a rebalance
    queue: FlowControlQueue[str] = FlowControlQueue(flow_control=flow_control, clear_on_resume=True)
    consumer = StubConsumer(queue)

    async def nothing(*_: Any, **__: Any) -> None:
        return None

    async def wait(coro: Any, timeout: float | None = None) -> None:
        await coro

    app = SimpleNamespace(
        consumer=consumer,
        flow_control=flow_control,
        consumer_generation_id=1,
        conf=SimpleNamespace(broker_request_timeout=30.0),
        on_rebalance_complete=SimpleNamespace(send=nothing),
        _fetcher=SimpleNamespace(maybe_start=nothing),
        on_rebalance_end=lambda: None,
    )
    recovery = SimpleNamespace(
        app=app,
        log=SimpleNamespace(info=lambda *a: None, dev=lambda *a: None, warning=lambda *a: None),
        _wait=wait,
        _is_changelog_tp=lambda tp: False,
        completed=SimpleNamespace(set=lambda: None),
        tables=SimpleNamespace(on_actives_ready=lambda: None, on_standbys_ready=lambda: None),
    )
    return recovery, consumer, queue


# --- work-around 13: fetching across a rebalance --------------------------------------------------

TOPIC = "src"
TP0 = TP(TOPIC, 0)
TP1 = TP(TOPIC, 1)


def fetch_consumer() -> Any:
    """A real, unstarted aiokafka-driver consumer of TOPIC (acked), generation 1; its seek to the
    committed offsets (which needs a started client) is recorded in ``seeks``."""
    app = faust.App("fetch-test", broker="kafka://127.0.0.1:9")
    app.topics._acking_topics.add(TOPIC)
    app.consumer_generation_id = 1
    c: Any = app.consumer
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


async def fetched(consumer: Any) -> list[Any]:
    return [message async for _, message in consumer.getmany(timeout=0.1)]


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


# --- work-around 14: commits after a transaction marker -------------------------------------------


class Offsets:
    """The offset bookkeeping of Faust's Consumer, driven by Faust's own methods."""

    def __init__(self) -> None:
        from intervaltree import IntervalTree

        self._acked: dict[Any, list[int]] = defaultdict(list)
        self._acked_index: dict[Any, set[int]] = defaultdict(set)
        self._gap: dict[Any, Any] = defaultdict(IntervalTree)
        self._committed_offset: dict[Any, int | None] = defaultdict(lambda: None)
        self._read_offset: dict[Any, int | None] = defaultdict(lambda: None)

    async def receive(self, tp: Any, offset: int) -> None:
        """What Consumer._drain_messages does for a record: a skipped offset before it is a gap."""
        r_offset = self._read_offset[tp]
        if r_offset is not None and offset - r_offset > 1:
            await Consumer._add_gap(self, tp, r_offset + 1, offset)  # type: ignore[arg-type]
        self._read_offset[tp] = offset

    def ack(self, tp: Any, offset: int) -> None:
        self._acked_index[tp].add(offset)
        self._acked[tp].append(offset)

    def commit(self, tp: Any, new_offset: Any) -> int | None:
        """Consumer._filter_committable_offsets and _commit_offsets for one partition."""
        offset = new_offset(self, tp)
        if offset is not None and Consumer._should_commit(self, tp, offset):  # type: ignore[arg-type]
            self._committed_offset[tp] = offset
            return offset
        return None


async def updates_one_at_a_time(new_offset: Any) -> list[int | None]:
    """A transactional input partition, one record per transaction: records at even offsets,
    each followed by its commit marker (which a read_committed consumer never sees)."""
    book, tp = Offsets(), ("chunks", 0)
    await book.receive(tp, 0)
    book.ack(tp, 0)
    commits = [book.commit(tp, new_offset)]
    for record in (2, 4, 6, 8):
        await book.receive(tp, record)
        book.ack(tp, record)
        commits.append(book.commit(tp, new_offset))
    return commits


# --- work-around 15: the livelock check on a partition awaiting reset -----------------------------

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


# --- work-arounds 5 and 6: the TransactionManager on revocation and commit ------------------------

REVOKED = {("rag.documents.raw", 0), ("rag.documents.raw", 1)}


class Txn:
    def __init__(self, open_: bool) -> None:
        self._txn_manager = SimpleNamespace(is_in_transaction=lambda: open_)


def buffered_commit(published: list[str]) -> tuple[Any, list[Any]]:
    """A TransactionManager stand-in whose producer buffer holds three changelog records."""
    buffer = ProducerBuffer()
    channel = SimpleNamespace()

    async def publish_message(fut: Any, wait: bool = False) -> None:
        published.append(fut.name)

    channel.publish_message = publish_message
    for name in ("changelog 1", "changelog 2", "changelog 3"):
        buffer.pending.put_nowait(SimpleNamespace(name=name, message=SimpleNamespace(channel=channel)))
    commits: list[Any] = []

    async def commit_transactions(by_tid: Any, group_id: str, start_new_transaction: bool = True) -> None:
        commits.append((list(published), start_new_transaction))

    app = SimpleNamespace(
        conf=SimpleNamespace(id="app"),
        assignor=SimpleNamespace(group_for_topic=lambda topic: 0),
        producer=SimpleNamespace(buffer=buffer, commit_transactions=commit_transactions),
    )
    return SimpleNamespace(app=app, producer=app.producer), commits
