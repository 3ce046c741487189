"""A worker whose embedding model cannot be loaded stops at its start with one line and a non-zero
exit (the model loads on a thread from the start: rag_streams/adapters/model_preload.py), instead
of running on with an agent that fails on every document."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def test_a_worker_whose_model_cannot_be_loaded_exits_with_one_line(idle_pipeline: Any) -> None:
    worker = idle_pipeline.worker
    worker.env["RAG_EMBED_MODEL"] = "/nonexistent/model"
    worker.start()
    assert worker.proc is not None
    code = await asyncio.to_thread(worker.proc.wait, 180)
    lines = worker.log.read_text().strip().splitlines()
    assert code != 0, lines[-20:]
    assert lines[-1].startswith("rag-streams: error: the embedding model (/nonexistent/model) cannot be loaded:"), (
        lines[-20:]
    )
    assert "Traceback" not in worker.log.read_text()
