"""The embedding model loads on a thread from the worker's start (adapters/model_preload.py); the
first ``Services.embedder()`` waits for it instead of loading again, and a model that cannot be
loaded fails there as before."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

from rag_streams.adapters.model_preload import STARTUP_GC_THRESHOLD, start_preload
from rag_streams.adapters.services import Services
from rag_streams.settings import load_settings
from rag_streams.testing import HashingEmbedder


def test_the_load_runs_on_another_thread_with_the_gc_held_back_then_restored() -> None:
    before = gc.get_threshold()
    seen: dict[str, Any] = {}
    release = threading.Event()

    def load() -> str:
        seen["thread"] = threading.current_thread().name
        seen["threshold"] = gc.get_threshold()
        release.wait(5)
        return "model"

    future = start_preload(load)
    assert not future.done()  # start_preload did not wait for the load
    release.set()
    assert future.result(timeout=5) == "model"
    assert seen == {"thread": "rag-model-preload", "threshold": (STARTUP_GC_THRESHOLD, *before[1:])}
    assert gc.get_threshold() == before
    gc.unfreeze()


def test_a_failed_load_is_handed_to_whoever_waits_for_the_model() -> None:
    before = gc.get_threshold()

    def load() -> None:
        raise FileNotFoundError("Path /nonexistent not found")

    future = start_preload(load)
    with pytest.raises(FileNotFoundError, match="nonexistent"):
        future.result(timeout=5)
    assert gc.get_threshold() == before
    gc.unfreeze()


async def test_the_first_embedder_call_takes_the_preloaded_model_without_loading_again(monkeypatch: Any) -> None:
    services = Services(load_settings({}, dotenv=None))
    loads: list[str | None] = []
    model = HashingEmbedder()

    def load(source: str | None) -> HashingEmbedder:
        loads.append(source)
        return model

    monkeypatch.setattr(services, "_load", load)
    services.preload_model().result(timeout=5)
    assert await services.embedder() is model
    assert await services.embedder() is model
    assert loads == [None]
    gc.unfreeze()


async def test_the_first_embedder_call_raises_what_the_preload_raised(monkeypatch: Any) -> None:
    services = Services(load_settings({"RAG_EMBED_MODEL": "/nonexistent/model"}, dotenv=None))

    def load(source: str | None) -> None:
        raise FileNotFoundError("Path /nonexistent/model not found")

    monkeypatch.setattr(services, "_load", load)
    with pytest.raises(FileNotFoundError):
        services.preload_model().result(timeout=5)
    with pytest.raises(FileNotFoundError):
        await services.embedder()
    gc.unfreeze()
