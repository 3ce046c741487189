"""What a stalled worker is doing: logged every 10 s at ``RAG_LOG_LEVEL=debug``.

Two views that found Faust's dropped-on-recovery bug (work-around 4, rag_streams/_faust/compat.py):

* :func:`partition_states`: per input partition, aiokafka's fetch position next to Faust's read,
  acked and committed offsets. A position past the read offset with lag left means fetched
  messages were dropped before any agent saw them.
* :func:`await_chains`: every pending task's await chain, through async generators (which
  ``Task.print_stack`` and mode's SIGUSR1 dump cut off), for the main and the consumer thread loop.

Both read Faust and aiokafka internals without changing them; they are for debugging only.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["await_chains", "log_stall_view", "partition_states"]

log = logging.getLogger(__name__)


def log_stall_view(app: Any) -> Callable[[], Awaitable[None]]:
    """A timer body that logs both views at debug level, for the main and the consumer thread loop."""

    async def log_stall_view() -> None:
        log.debug("partitions %s", partition_states(app))
        for chain in await_chains():
            log.debug("task %s", chain)
        for chain in await_chains(app.consumer._thread.thread_loop):
            log.debug("consumer thread task %s", chain)

    return log_stall_view


def partition_states(app: Any) -> dict[str, dict[str, Any]]:
    consumer = app.consumer
    client = consumer._thread._consumer
    subscription = client._subscription.subscription if client is not None else None
    if subscription is None or subscription.assignment is None:
        return {}
    active = consumer._get_active_partitions()
    states = {}
    for tp in sorted(consumer.assignment()):
        if tp.topic in app.tables.changelog_topics:
            continue
        kafka = subscription.assignment.state_value(tp)
        states[f"{tp.topic}/{tp.partition}"] = {
            "active": tp in active,
            "position": kafka.position if kafka is not None and kafka.has_valid_position else None,
            "read": consumer._read_offset.get(tp),
            "committed": consumer._committed_offset.get(tp),
            "acked": len(consumer._acked.get(tp) or ()),
        }
    return states


def await_chains(loop: asyncio.AbstractEventLoop | None = None) -> list[str]:
    """``outer:line > inner:line > ...`` for each pending task of ``loop`` (default: the running one)."""
    chains = []
    for task in list(asyncio.all_tasks(loop)):
        links: list[str] = []
        awaited: Any = task.get_coro()
        while awaited is not None and len(links) < 64:
            frame = _frame(awaited)
            links.append(f"{frame.f_code.co_name}:{frame.f_lineno}" if frame else type(awaited).__name__)
            awaited = _next(awaited, frame)
        chains.append(" > ".join(links))
    return chains


def _frame(awaitable: Any) -> Any:
    return (
        getattr(awaitable, "cr_frame", None)
        or getattr(awaitable, "ag_frame", None)
        or getattr(awaitable, "gi_frame", None)
    )


def _next(awaitable: Any, frame: Any) -> Any:
    nxt = (
        getattr(awaitable, "cr_await", None)
        or getattr(awaitable, "ag_await", None)
        or getattr(awaitable, "gi_yieldfrom", None)
    )
    if type(nxt).__name__ == "async_generator_asend" and frame is not None:
        # `async for` over a generator: follow the running generator held by the awaiting frame
        running = [v for v in frame.f_locals.values() if inspect.isasyncgen(v) and v.ag_running]
        return running[0] if running else None
    return nxt
