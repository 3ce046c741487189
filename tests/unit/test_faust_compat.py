"""Work-around 4: no message fetched while recovery completes is dropped.

Runs Faust's own ``Recovery._resume_streams`` (the body shared with ``on_recovery_completed``)
against a stand-in app whose seek delivers a message into a real flow-controlled stream queue,
as a restarted worker with a backlog does.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.tables.recovery import Recovery
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from rag_streams._faust.compat import install_ordered_stream_resume

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


async def test_ordered_resume_keeps_every_message_and_resumes_streams_after_the_seek() -> None:
    install_ordered_stream_resume()
    recovery, consumer, queue = stub_recovery()
    queue.put_nowait("stale event of the previous generation")
    await Recovery._resume_streams(recovery, generation_id=1)
    assert consumer.seeks == 1
    assert consumer.active == {STREAM_TP}  # resumed, after the seek
    assert recovery.app.flow_control.is_active()
    assert queue.qsize() == 0  # the stale event was cleared; nothing was fetched while paused
    queue.put_nowait("next message")
    assert queue.get_nowait() == "next message"
    assert "resume_partitions" not in vars(consumer)  # the deferral is undone


async def test_ordered_resume_does_not_resume_streams_of_a_superseded_generation() -> None:
    install_ordered_stream_resume()
    recovery, consumer, _ = stub_recovery()
    recovery.app.consumer_generation_id = 2  # another rebalance began meanwhile
    await Recovery._resume_streams(recovery, generation_id=1)
    assert consumer.active == set()


def test_install_is_idempotent() -> None:
    install_ordered_stream_resume()
    wrapped = Recovery.on_recovery_completed
    install_ordered_stream_resume()
    assert Recovery.on_recovery_completed is wrapped
