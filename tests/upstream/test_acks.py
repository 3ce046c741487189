"""Work-around 11: Faust acks a batch it handed out in a ``finally:``, even when its work was cut off."""

from __future__ import annotations

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
