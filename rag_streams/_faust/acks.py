"""Work-arounds 11 and 23: an event whose processing was cut off must not be acked; one that is done
is acked at once, not when its whole take is.

Faust acks events in a ``finally:``: ``Stream.take_events()`` acks the whole batch it handed
out, and ``async for event in stream`` acks the current event when the generator is closed.
Both run when the agent is *cancelled*, as it is on every clean stop (SIGTERM, a scale-down):
the worker then commits the offsets of events whose work never finished, and their outputs
are lost for good. Found by tests/integration/test_worker_roles.py: an embed worker stopped
while its model ran on a batch committed that batch's offsets with no embeddings sent, and the
index never received about 100 chunks of the partition it gave up.

:func:`redelivered_unless_done` wraps the work on events: if it ends by an exception that
escapes it (a cancellation, or a bug the agent did not handle), those events are marked as
acked *without* registering their offsets with the consumer, so Faust's own ``finally:`` ack
does nothing. Their offsets stay a gap below which Faust commits, and the partition's next
owner processes them again; outputs already sent for some of them are dropped there as replays
by the stage's tables, which committed in the same transactions as those outputs.

Work-around 23: ``take_events()`` acks a take's events only when the whole take is handled, so
under exactly_once the outputs of its first events stay in an open transaction (invisible to the
next stage) until its last one is done. The embed stage's take holds several model batches
(``RAG_EMBED_BATCHES_PER_TAKE``): :func:`ack_handled` acks each event as soon as its outputs are
sent, so the next commit carries them with its offset, a model batch at a time. Faust's own ack at
the end of the take then finds the message acked and does nothing (``Message.ack``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from faust.types.tuples import ack_lock

__all__ = ["ack_handled", "redelivered_unless_done", "withhold_ack", "withhold_acks"]


def withhold_ack(consumer: Any, message: Any) -> None:
    """Make Faust's later ack of ``message`` a no-op, so its offset is never committed here."""
    with ack_lock:
        if not message.acked:
            message.acked = True  # Message.ack() and Consumer.ack() skip an acked message
            consumer._unacked_messages.discard(message)  # or wait_empty() waits for it


def withhold_acks(consumer: Any, events: Iterable[Any]) -> None:
    for event in events:
        withhold_ack(consumer, event.message)


@contextmanager
def redelivered_unless_done(consumer: Any, events: Iterable[Any]) -> Iterator[None]:
    """Run the work on ``events``; if an exception escapes it, withhold their acks and re-raise."""
    try:
        yield
    except BaseException:  # cancelled (a stop, a rebalance) or crashed: the events must come again
        withhold_acks(consumer, events)
        raise


def ack_handled(app: Any, event: Any) -> bool:
    """Ack ``event`` now (its outputs sent in its partition's transaction), where this stream is the
    last one holding its message: the next commit carries its offset. Faust's later ack of the take
    is then a no-op for it. Returns whether it was acked here (False: left to Faust's own ack)."""
    message = event.message
    with ack_lock:
        if message.acked or message.refcount > 1:  # another stream still holds it: Faust's ack decides
            return False
        final: bool = event.ack()
    if final:  # what Stream.ack reports when the last stream acks (its sensors count messages out)
        app.sensors.on_message_out(message.tp, message.offset, message)
    return final
