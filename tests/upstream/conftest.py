"""Upstream-behaviour tests: each pins the Faust/aiokafka/mode behaviour one work-around works
around (rag_streams/_faust/registry.py names it). They run Faust's own code, unpatched (through
``inspect.unwrap`` where a work-around may be installed in this process). When one fails, Faust
changed: the failure says which work-around to remove or re-verify."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from rag_streams._faust.registry import WORK_AROUNDS

PINNED = {test: entry.number for entry in WORK_AROUNDS for test in entry.pinned_by}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    try:
        return (yield)
    except (Exception, pytest.fail.Exception) as exc:
        number = PINNED.get(item.nodeid)
        if number is None:
            raise
        seen = f"{type(exc).__name__}: {exc}"
    message = f"work-around {number}: Faust no longer shows this; remove or re-verify it"
    raise pytest.fail.Exception(f"{message}\n(what the test saw: {seen})", pytrace=False) from None
