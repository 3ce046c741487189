"""Work-arounds 11 and 23: Faust acks a batch it handed out in a ``finally:``, even when its work was
cut off, and only then: not an event of it that is done before the rest."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import faust
from faust.streams import Stream
from faust.types import TP
from faust.types.tuples import ConsumerMessage

TOPIC = "src"
TP0 = TP(TOPIC, 0)


def test_faust_commits_every_acked_offset_of_a_batch() -> None:
    source = inspect.getsource(inspect.unwrap(Stream.take_events))
    assert "finally:" in source and "await self.ack(event)" in source  # acked however the body ended
    app = faust.App("upstream-11", broker="kafka://127.0.0.1:9")
    app.topics._acking_topics.add(TOPIC)  # what subscribing to the topic does
    consumer: Any = app.consumer
    batch = [ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None, tp=TP0) for offset in range(3)]
    for message in batch:
        consumer.track_message(message)
    for message in batch:  # what take_events' finally: does with the batch it handed out
        message.ack(consumer)
    assert consumer._new_offset(TP0) == 3  # committed although the work never ran


async def test_faust_acks_a_take_only_when_all_of_it_is_handled() -> None:
    """23: inside a take's body none of its events is acked, whatever the body did with them."""
    app = faust.App("upstream-23", broker="kafka://127.0.0.1:9", store="memory://")
    seen: list[list[bool]] = []
    taken: list[Any] = []

    @app.agent(app.topic("t23", value_type=bytes))
    async def agent(stream: Any) -> None:
        async for events in stream.take_events(2, within=0.2):
            await asyncio.sleep(0.05)  # the first event done long before the take ends
            seen.append([e.message.acked for e in events])
            taken.extend(events)

    async with agent.test_context() as test:
        await test.put(b"a")
        await test.put(b"b")
        for _ in range(100):
            if taken and all(e.message.acked for e in taken):
                break
            await asyncio.sleep(0.01)
    assert seen == [[False, False]]  # inside the body: nothing acked
    assert [e.message.acked for e in taken] == [True, True]  # acked when the take ended


def test_an_acked_message_is_not_acked_again() -> None:
    """23: what makes acking a handled event early safe: Faust's own ack of the take later is a no-op."""
    app = faust.App("upstream-23b", broker="kafka://127.0.0.1:9")
    app.topics._acking_topics.add(TOPIC)
    consumer: Any = app.consumer
    message = ConsumerMessage(TOPIC, 0, 0, 0.0, 0, None, b"k", b"v", None, tp=TP0)
    message.incref()  # one stream holds it, as the conductor does for one subscribed channel
    consumer.track_message(message)
    assert message.ack(consumer) is True and consumer._n_acked == 1
    assert message.ack(consumer) is False and consumer._n_acked == 1
    assert consumer._new_offset(TP0) == 1
