"""Work-around 12: a transactional commit never falls between an event's outputs and its table writes.

Faust commits from a timer task (and on revocation, and on stop) while agents keep running.
A stage sends its outputs for an event and then records what it emitted in a table (so a
replay of the event is recognised and dropped). A commit that fired during the send's ``await``
put the output in one transaction and the table write in the next: a worker killed before the
second commit left the output visible, the table without it, and the input offset uncommitted,
so the next owner emitted it again, a duplicate for read_committed consumers. A send made while
Faust was between ``commit_transaction`` and ``begin_transaction`` failed outright.

:func:`emitting_for` marks an event's outputs and table writes as one unit, and the installed
gate makes every transactional commit wait until no unit is in progress, and new units wait
until the commit is done. Commits may overlap each other (a revocation's commit runs Faust's own
commit inside it); units never overlap a commit.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from faust.transport.consumer import TransactionManager

from rag_streams._faust.compat import acting_on
from rag_streams._faust.patch import patch_once

__all__ = ["CommitGate", "emitting_for", "gate", "install_commit_gate"]


class CommitGate:
    """Units (many at once) and commits (many at once) exclude each other; a commit waiting
    keeps new units out, so a steady stream of events cannot starve it."""

    def __init__(self) -> None:
        self.units = 0
        self.commits = 0
        self._no_units = asyncio.Event()
        self._no_commits = asyncio.Event()
        self._no_units.set()
        self._no_commits.set()

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[None]:
        while self.commits:
            await self._no_commits.wait()
        self.units += 1
        self._no_units.clear()
        try:
            yield
        finally:  # no await here: a cancelled unit must still let commits through
            self.units -= 1
            if not self.units:
                self._no_units.set()

    @asynccontextmanager
    async def commit(self) -> AsyncIterator[None]:
        self.commits += 1
        self._no_commits.clear()
        try:
            while self.units:
                await self._no_units.wait()
            yield
        finally:
            self.commits -= 1
            if not self.commits:
                self._no_commits.set()


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CommitGate] = weakref.WeakKeyDictionary()


def gate() -> CommitGate:
    """The running loop's gate (Faust's agents and commits share the worker's one loop)."""
    loop = asyncio.get_running_loop()
    if loop not in _gates:
        _gates[loop] = CommitGate()
    return _gates[loop]


@asynccontextmanager
async def emitting_for(event: Any) -> AsyncIterator[None]:
    """Send ``event``'s outputs and write its table rows inside one unit no commit splits."""
    async with gate().unit():
        with acting_on(event):
            yield


def _gated(original: Any) -> Any:
    async def commit(self: TransactionManager, *args: Any, **kwargs: Any) -> Any:
        async with gate().commit():
            return await original(self, *args, **kwargs)

    return commit


def install_commit_gate() -> None:
    """Gate Faust's transactional commit and the revocation commit (idempotent; install last)."""
    for name in ("commit", "on_partitions_revoked"):
        patch_once(TransactionManager, name, _gated)
