"""The stage runtime takes a stage's lane turns: handlers of a laned stage get their lane, and the
stages of one worker share the rule that bulk work waits for updates."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from rag_streams.pipeline.lanes import Lanes
from rag_streams.pipeline.runtime import StageRuntime
from rag_streams.settings import load_settings


class _Stream:
    def __init__(self, items: list[Any]) -> None:
        self.items = items

    async def events(self) -> Any:
        for item in self.items:
            yield item

    async def take_events(self, size: int, within: float) -> Any:
        for start in range(0, len(self.items), size):
            yield self.items[start : start + size]


def _runtime(name: str, lanes: Lanes) -> StageRuntime:
    app = SimpleNamespace(consumer=SimpleNamespace())
    return StageRuntime(name, app, load_settings({}, dotenv=None), deadletter_topic=None, lanes=lanes)


async def test_a_laned_handler_gets_its_lane_and_an_unlaned_one_does_not() -> None:
    runtime, seen = _runtime("chunk", Lanes()), []

    async def laned(event: Any, lane: str) -> None:
        seen.append((event, lane))

    async def plain(events: list[Any]) -> None:
        seen.append((tuple(events), None))

    await runtime.each(_Stream(["a"]), laned, lane="bulk")
    await runtime.batches(_Stream(["b", "c"]), laned, lane="interactive", size=2)
    await runtime.batches(_Stream(["d"]), plain)
    assert seen == [("a", "bulk"), (["b", "c"], "interactive"), (("d",), None)]


async def test_the_bulk_lane_of_one_stage_waits_for_an_update_in_another() -> None:
    lanes = Lanes()
    chunk, embed = _runtime("chunk", lanes), _runtime("embed", lanes)
    log: list[str] = []
    release = asyncio.Event()

    async def update(events: list[Any], lane: str) -> None:
        log.append(f"start {lane}")
        await release.wait()
        log.append(f"end {lane}")

    async def bulk_chunk(event: Any, lane: str) -> None:
        log.append(f"chunk {event} ({lane})")

    embedding = asyncio.create_task(embed.batches(_Stream(["u"]), update, lane="interactive"))
    await asyncio.sleep(0.01)
    chunking = asyncio.create_task(chunk.each(_Stream(["d1", "d2"]), bulk_chunk, lane="bulk"))
    await asyncio.sleep(0.01)
    assert log == ["start interactive"]
    release.set()
    await asyncio.wait_for(asyncio.gather(embedding, chunking), 5)
    assert log == ["start interactive", "end interactive", "chunk d1 (bulk)", "chunk d2 (bulk)"]


async def test_a_take_in_pieces_takes_a_turn_a_piece_and_an_update_goes_between_them() -> None:
    lanes = Lanes()
    bulk, other = _runtime("embed", lanes), _runtime("chunk", lanes)
    log: list[str] = []
    first_piece_running, release = asyncio.Event(), asyncio.Event()

    async def bulk_piece(events: list[Any], lane: str) -> None:
        log.append(f"{lane} {''.join(events)}")
        if events[0] == "a":
            first_piece_running.set()
            await release.wait()

    async def update(event: Any, lane: str) -> None:
        log.append(f"{lane} {event}")

    def halves(events: list[Any]) -> list[list[Any]]:
        return [events[:2], events[2:]]

    take = asyncio.create_task(
        bulk.batches(_Stream(["a", "b", "c", "d"]), bulk_piece, lane="bulk", size=4, pieces=halves)
    )
    await first_piece_running.wait()
    updating = asyncio.create_task(other.each(_Stream(["u"]), update, lane="interactive"))
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.wait_for(asyncio.gather(take, updating), 5)
    assert log == ["bulk ab", "interactive u", "bulk cd"]  # one take of 4, two turns: the update went between
