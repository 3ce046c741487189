"""Work-arounds for faust-streaming behaviour, each explained where it is used.

``Stream.take_events()`` hands a batch of events to the agent body, but the body runs
outside any event's context: table writes then fail ("Cannot modify table key from
outside of stream iteration") and, under exactly_once, a send cannot find the event whose
transaction it belongs to. :func:`acting_on` makes one event of the batch current while a
table is written or a message is sent for it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event

__all__ = ["acting_on"]


@contextmanager
def acting_on(event: Any) -> Iterator[None]:
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
