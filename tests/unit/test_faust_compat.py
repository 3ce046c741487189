"""Work-around 4: no message fetched while recovery completes is dropped.

Runs Faust's own ``Recovery._resume_streams`` (the body shared with ``on_recovery_completed``)
against a stand-in app whose seek delivers a message into a real flow-controlled stream queue,
as a restarted worker with a backlog does.
"""

from __future__ import annotations

from faust.tables.recovery import Recovery

from rag_streams._faust.compat import install_ordered_stream_resume

from support.faust_fakes import STREAM_TP, stub_recovery


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
