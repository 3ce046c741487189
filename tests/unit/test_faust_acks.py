"""Work-around 11: events whose work was cut off are not acked, so their offsets are not committed.

Runs Faust's own ``Message.ack`` / ``Consumer.ack`` / ``Consumer._new_offset`` (the offset a
commit would write) on a real, unstarted aiokafka-driver consumer.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from rag_streams._faust.acks import redelivered_unless_done, withhold_acks

TOPIC = "src"
TP0 = TP(TOPIC, 0)


@pytest.fixture
def consumer() -> Any:
    app = faust.App("acks-test", broker="kafka://127.0.0.1:9")
    app.topics._acking_topics.add(TOPIC)  # what subscribing to the topic does
    return app.consumer


def events(consumer: Any, offsets: range) -> list[Any]:
    out = []
    for offset in offsets:
        message = ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None, tp=TP0)
        consumer.track_message(message)
        out.append(SimpleNamespace(message=message))
    return out


def faust_acks(consumer: Any, batch: list[Any]) -> None:
    """What ``take_events``' ``finally:`` does with the batch it handed out."""
    for event in batch:
        event.message.ack(consumer)


def test_a_withheld_batch_is_a_gap_that_commits_stop_below(consumer: Any) -> None:
    done, cut_off, after = events(consumer, range(2)), events(consumer, range(2, 4)), events(consumer, range(4, 6))
    faust_acks(consumer, done)
    withhold_acks(consumer, cut_off)
    faust_acks(consumer, cut_off + after)
    assert consumer._new_offset(TP0) == 2
    assert not consumer._unacked_messages  # Faust's wait_empty() on stop does not wait for them


async def test_a_cancelled_batch_is_withheld_and_the_cancellation_goes_on(consumer: Any) -> None:
    batch = events(consumer, range(3))

    async def work() -> None:
        with redelivered_unless_done(consumer, batch):
            await asyncio.sleep(60)  # the model running when the worker is stopped

    task = asyncio.ensure_future(work())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    faust_acks(consumer, batch)
    assert consumer._new_offset(TP0) is None


async def test_a_finished_batch_is_acked_as_usual(consumer: Any) -> None:
    batch = events(consumer, range(3))
    with redelivered_unless_done(consumer, batch):
        await asyncio.sleep(0)
    faust_acks(consumer, batch)
    assert consumer._new_offset(TP0) == 3
