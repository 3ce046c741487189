"""Work-arounds 4, 8 and 9: Faust's table recovery under exactly_once, as it ships.

Work-around 4 runs Faust's own ``Recovery._resume_streams`` (the body shared with
``on_recovery_completed``) against a stand-in app whose seek delivers a message into a real
flow-controlled stream queue, as a restarted worker with a backlog does.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from support.faust_fakes import stub_recovery


async def test_faust_alone_drops_what_the_seek_fetched() -> None:
    """4: flow_control.resume() after the seek clears what the seek fetched."""
    recovery, consumer, queue = stub_recovery()
    await inspect.unwrap(Recovery._resume_streams)(recovery, generation_id=1)
    assert consumer.seeks == 1
    assert queue.qsize() == 0  # fetched, its position moved on, and cleared: never processed


TP0 = TopicPartition("app-accepted-versions-changelog", 0)


async def test_faust_alone_has_no_highwater_right_after_an_assignment() -> None:
    """8: Faust asks aiokafka for the last stable offset, which only a fetch response sets: right
    after a rebalance it is None, and Faust's recovery turns that into highwater -1."""
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", isolation_level="read_committed")
    consumer.assign([TP0])
    thread = SimpleNamespace(consumer=SimpleNamespace(in_transaction=True), _ensure_consumer=lambda: consumer)
    highwaters = inspect.unwrap(AIOKafkaConsumerThread._highwaters)
    assert await highwaters(thread, [TP0]) == {TP0: None}


def test_faust_alone_escapes_markers_only_after_two_timeouts() -> None:
    """9: Faust ends a recovery stuck below a highwater of transaction markers (detect_aborted_tx) only
    after two timeouts of an empty changelog queue."""
    source = inspect.getsource(Recovery._slurp_changelogs.fun)  # type: ignore[attr-defined]
    assert "timeout_count > 1" in source and "await detect_aborted_tx()" in source
    assert "changelog_queue.get(), timeout=5.0" in source
