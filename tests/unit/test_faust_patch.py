"""patch_once: each work-around wraps a method once, whatever else wraps it."""

from __future__ import annotations

import inspect
from typing import Any

from rag_streams._faust.patch import installed, patch_once


class Service:
    def run(self) -> list[str]:
        return ["faust"]


def outer(label: str) -> Any:
    def wrap(original: Any) -> Any:
        def run(self: Any) -> list[str]:
            return [label, *original(self)]

        return run

    wrap.__qualname__ = f"wrap_{label}"
    return wrap


GATE, REVOKE = outer("gate"), outer("revoke")


def test_two_work_arounds_on_one_method_are_both_installed_once(monkeypatch: Any) -> None:
    monkeypatch.setattr(Service, "run", Service.run)
    faust = Service.run
    patch_once(Service, "run", GATE)
    patch_once(Service, "run", REVOKE)  # a method some other work-around already wraps
    patch_once(Service, "run", GATE)
    patch_once(Service, "run", REVOKE)
    assert Service().run() == ["revoke", "gate", "faust"]
    assert len(installed(Service.run)) == 2 and inspect.unwrap(Service.run) is faust


def test_a_tag_tells_apart_two_wrappers_made_by_one_factory(monkeypatch: Any) -> None:
    monkeypatch.setattr(Service, "run", Service.run)
    patch_once(Service, "run", outer("a"), tag="first")
    patch_once(Service, "run", outer("b"), tag="second")
    patch_once(Service, "run", outer("a"), tag="first")
    assert Service().run() == ["b", "a", "faust"]
