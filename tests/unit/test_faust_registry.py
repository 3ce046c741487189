"""The register of Faust work-arounds (rag_streams/_faust/registry.py): complete, consistent with the
tests, the docs and the pins, installed in its order; and the version guard at worker start."""

from __future__ import annotations

import ast
import configparser
import importlib
import re
import sys
import types
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from rag_streams._faust import check_versions, docs_table, install_all
from rag_streams._faust.patch import installed
from rag_streams._faust.registry import INSTALL_ORDER, NOT_REPORTED, VERIFIED, WORK_AROUNDS
from rag_streams.adapters import model_imports
from rag_streams.cli import main
from rag_streams.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_numbers_run_from_1_without_gaps() -> None:
    assert [w.number for w in WORK_AROUNDS] == list(range(1, len(WORK_AROUNDS) + 1))


def upstream_tests() -> set[str]:
    found = set()
    for path in sorted((ROOT / "tests" / "upstream").glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                found.add(f"tests/upstream/{path.name}::{node.name}")
    return found


def test_every_work_around_is_pinned_by_an_upstream_test_that_exists_and_every_upstream_test_pins_one() -> None:
    pinned = [t for w in WORK_AROUNDS for t in w.pinned_by] + [model_imports.PINNED_BY]  # + the one outside Faust
    assert all(w.pinned_by for w in WORK_AROUNDS)
    assert len(pinned) == len(set(pinned))  # each test pins one work-around: its failure names it
    assert set(pinned) == upstream_tests()


def test_every_entry_names_its_upstream_report_or_says_there_is_none() -> None:
    for w in WORK_AROUNDS:
        url = w.upstream.removeprefix("related: ")
        assert w.upstream == NOT_REPORTED or re.fullmatch(r"https://github\.com/[\w-]+/[\w-]+/(issues|pull)/\d+", url)
        assert w.patches and w.title and w.where


def test_install_order_holds_every_installable_work_around_once_after_what_it_depends_on() -> None:
    installable = {w.number for w in WORK_AROUNDS if w.install is not None}
    assert sorted(INSTALL_ORDER) == sorted(installable) and len(INSTALL_ORDER) == len(installable)
    numbers = {w.number for w in WORK_AROUNDS}
    for w in WORK_AROUNDS:
        assert set(w.depends_on) <= numbers - {w.number}
        if w.install is not None:
            before = INSTALL_ORDER[: INSTALL_ORDER.index(w.number)]
            assert all(d in before for d in w.depends_on if d in installable), w.number


def resolve(symbol: str) -> Any:
    module, _, rest = symbol.partition(".")
    obj: Any = importlib.import_module(module)
    for part in rest.split("."):
        obj = getattr(obj, part) if hasattr(obj, part) else importlib.import_module(f"{obj.__name__}.{part}")
    return obj


def test_install_all_wraps_every_symbol_an_installable_work_around_names_through_patch_once() -> None:
    install_all()
    install_all()  # idempotent: nothing is wrapped twice
    for w in WORK_AROUNDS:
        if w.install is None:
            continue
        for symbol in w.patches:
            tags = installed(resolve(symbol))
            assert tags and len(tags) == len(set(tags)), (w.number, symbol, tags)
    # the commit gate (12) is installed last: it wraps Faust's commit outermost
    commit_tags = installed(resolve("faust.transport.consumer.TransactionManager.commit"))
    assert commit_tags[0].startswith("rag_streams._faust.commit_gate.")


# --- pins: setup.cfg, constraints.txt, the register and what is installed agree ------------------


def pins_in(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        if m := re.fullmatch(r"\s*([A-Za-z0-9_.-]+)==([^\s;#]+)\s*", line):
            pins[m[1].lower().replace("_", "-")] = m[2]
    return pins


def test_setup_cfg_constraints_and_the_register_pin_the_installed_versions() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    setup_pins = pins_in(cfg["options"]["install_requires"].splitlines())
    constraints = pins_in((ROOT / "constraints.txt").read_text().splitlines())
    for pkg, versions in VERIFIED.items():
        assert setup_pins[pkg] == constraints[pkg] == metadata.version(pkg) == versions[-1], pkg
    assert all(w.verified == tuple((p, v[-1]) for p, v in VERIFIED.items()) for w in WORK_AROUNDS)
    for pkg in setup_pins:  # every direct runtime dependency is in the constraints
        assert pkg in constraints, pkg


def test_constraints_pin_every_runtime_dependency_at_its_installed_version() -> None:
    constraints = pins_in((ROOT / "constraints.txt").read_text().splitlines())
    for pkg, version in constraints.items():
        assert metadata.version(pkg) == version, pkg


def test_the_docs_table_is_the_registers() -> None:
    text = (ROOT / "docs" / "faust-workarounds.md").read_text()
    begin = "<!-- generated from rag_streams/_faust/registry.py: begin -->\n"
    end = "<!-- generated from rag_streams/_faust/registry.py: end -->"
    assert text[text.index(begin) + len(begin) : text.index(end)] == docs_table()


# --- the guard at worker start ---------------------------------------------------------------


@pytest.fixture
def faust_0_16(monkeypatch: pytest.MonkeyPatch) -> None:
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda pkg: "0.16.0" if pkg == "faust-streaming" else real(pkg))


def test_verified_versions_pass_the_guard() -> None:
    assert check_versions(allow_unverified=False) == []


def test_a_wrong_faust_version_stops_the_worker_with_one_line_naming_the_verified_versions(
    faust_0_16: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RAG_ALLOW_UNVERIFIED_FAUST", raising=False)
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rag-streams: error: faust-streaming 0.16.0 installed")
    assert "faust-streaming 0.15.3, aiokafka 0.14.0, mode-streaming 0.7.1" in err
    assert "RAG_ALLOW_UNVERIFIED_FAUST" in err


class Reached(Exception):
    pass


def test_the_setting_lets_an_unverified_version_through_the_guard(
    faust_0_16: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert check_versions(allow_unverified=True) == ["faust-streaming 0.16.0"]
    monkeypatch.setenv("RAG_ALLOW_UNVERIFIED_FAUST", "true")
    app = types.ModuleType("rag_streams.pipeline.app")  # the worker goes on to load the app: stop it there

    def getattr_(name: str) -> Any:
        raise Reached(name)

    app.__getattr__ = getattr_  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "rag_streams.pipeline.app", app)
    with pytest.raises(Reached):
        main(["worker"])


def test_the_setting_is_a_validated_bool() -> None:
    assert load_settings({}, dotenv=None).allow_unverified_faust is False
    assert load_settings({"RAG_ALLOW_UNVERIFIED_FAUST": "True"}, dotenv=None).allow_unverified_faust is True
    assert load_settings({"RAG_ALLOW_UNVERIFIED_FAUST": "0"}, dotenv=None).allow_unverified_faust is False
    with pytest.raises(SettingsError, match="RAG_ALLOW_UNVERIFIED_FAUST: must be true or false"):
        load_settings({"RAG_ALLOW_UNVERIFIED_FAUST": "maybe"}, dotenv=None)
