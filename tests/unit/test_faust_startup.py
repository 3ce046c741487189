"""Work-around 20 (rag_streams/_faust/startup.py): the table manager registers its changelog channels
and starts the Recovery service at once, without Faust's fixed one-second sleep."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.tables.manager import TableManager

from rag_streams._faust.startup import install_no_start_sleep


async def test_the_table_manager_subscribes_and_starts_recovery_without_sleeping() -> None:
    install_no_start_sleep()
    calls: list[str] = []

    async def sleep(seconds: float) -> None:
        calls.append(f"sleep {seconds}")

    async def update_channels() -> None:
        calls.append("channels")

    async def start() -> None:
        calls.append("recovery")

    manager: Any = SimpleNamespace(
        should_stop=False, sleep=sleep, _update_channels=update_channels, recovery=SimpleNamespace(start=start)
    )
    await asyncio.wait_for(TableManager.on_start(manager), timeout=0.5)
    assert calls == ["channels", "recovery"]


async def test_a_stopping_table_manager_does_neither() -> None:
    install_no_start_sleep()
    manager: Any = SimpleNamespace(should_stop=True)
    await TableManager.on_start(manager)  # touches nothing else
