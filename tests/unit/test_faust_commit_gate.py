"""Work-around 12: no transactional commit falls between an event's outputs and its table rows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.transport.consumer import TransactionManager

from rag_streams._faust.commit_gate import CommitGate, gate, install_commit_gate


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_commit_waits_for_the_unit_in_progress_and_new_units_wait_for_it() -> None:
    g, log = CommitGate(), []
    release = asyncio.Event()

    async def unit(name: str) -> None:
        async with g.unit():
            log.append(f"{name} in")
            await release.wait()  # the send's await, where Faust's commit timer used to fire
            log.append(f"{name} out")

    async def commit() -> None:
        async with g.commit():
            log.append("commit")

    first = asyncio.ensure_future(unit("a"))
    await settle()
    committing = asyncio.ensure_future(commit())
    await settle()
    second = asyncio.ensure_future(unit("b"))
    await settle()
    assert log == ["a in"]  # the commit waits for a; b waits for the commit
    release.set()
    await asyncio.gather(first, committing, second)
    assert log == ["a in", "a out", "commit", "b in", "b out"]


async def test_a_cancelled_unit_lets_the_commit_through() -> None:
    g = CommitGate()

    async def unit() -> None:
        async with g.unit():
            await asyncio.sleep(60)  # the worker is stopped here

    task = asyncio.ensure_future(unit())
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(1):
        async with g.commit():
            pass
    assert (g.units, g.commits) == (0, 0)


async def test_commits_may_nest_like_the_revocation_commit_runs_faust_commit() -> None:
    g = CommitGate()
    async with asyncio.timeout(1):
        async with g.commit(), g.commit():
            assert g.commits == 2
    assert g.commits == 0


async def test_the_installed_gate_holds_faust_commit_until_the_unit_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    committed: list[Any] = []

    async def faust_commit(self: Any, offsets: Any, start_new_transaction: bool = True) -> bool:
        committed.append(offsets)
        return True

    monkeypatch.setattr(TransactionManager, "commit", faust_commit)
    install_commit_gate()
    install_commit_gate()  # idempotent: one gate, not two
    assert TransactionManager.commit.__wrapped__ is faust_commit  # type: ignore[attr-defined]
    release = asyncio.Event()

    async def unit() -> None:
        async with gate().unit():
            await release.wait()

    task = asyncio.ensure_future(unit())
    await settle()
    commit = asyncio.ensure_future(TransactionManager.commit(object(), {"tp": 1}))  # type: ignore[arg-type]
    await settle()
    assert committed == []
    release.set()
    await asyncio.gather(task, commit)
    assert committed == [{"tp": 1}]
