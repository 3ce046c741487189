"""Work-around 20: Faust's table manager sleeps a fixed second before it subscribes.

Not reported upstream. ``faust.tables.manager.TableManager.on_start`` begins with
``await self.sleep(1.0)`` and only then registers the changelog channels and starts the Recovery
service; the consumer subscribes, and so joins the group, after it. rag-streams creates every table
in ``create_app``, before the worker starts (``autodiscover=False``), so there is nothing to wait
for: on a quiet 2-core machine that second was on the critical path of a restart (the model had
loaded on its thread 1.3-1.6 s before Faust was ready; docs/operations.md, "Restart after a crash").
What Faust does after the sleep is kept as it is.
"""

from __future__ import annotations

from typing import Any

from faust.tables.manager import TableManager

from rag_streams._faust.patch import patch_once

__all__ = ["install_no_start_sleep"]


def _without_the_fixed_sleep(original: Any) -> Any:
    async def on_start(self: TableManager) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    return on_start


def install_no_start_sleep() -> None:
    """The table manager starts without Faust's fixed one-second sleep (idempotent)."""
    patch_once(TableManager, "on_start", _without_the_fixed_sleep)
