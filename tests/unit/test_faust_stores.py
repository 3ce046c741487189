"""Work-around 19 (rag_streams/_faust/stores.py): a RocksDB revocation that drops no database skips
Faust's full garbage collection; one that drops a database runs Faust's own code."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.stores import rocksdb as rocksdb_module
from faust.stores.rocksdb import Store
from faust.types import TP

from rag_streams._faust.stores import install_empty_revoke_skip

TOPIC = "app-versions-changelog"


def _store(dbs: dict[int, Any]) -> Any:
    return SimpleNamespace(_dbs=dbs, logger=SimpleNamespace(info=lambda *a: None))


def _table() -> Any:
    return SimpleNamespace(changelog_topic=SimpleNamespace(topics={TOPIC}))


def test_a_revoke_that_closes_nothing_collects_no_garbage(monkeypatch: Any) -> None:
    install_empty_revoke_skip()
    collected: list[int] = []
    monkeypatch.setattr(rocksdb_module.gc, "collect", lambda *a: collected.append(1) or 0)
    store = _store({0: "db0"})
    Store.revoke_partitions(store, _table(), set())  # a first assignment's revocation
    Store.revoke_partitions(store, _table(), {TP(TOPIC, 1), TP("other-changelog", 0)})  # no db of this table
    assert collected == []
    assert store._dbs == {0: "db0"}


def test_a_revoke_that_drops_a_database_runs_fausts_own_and_collects(monkeypatch: Any) -> None:
    install_empty_revoke_skip()
    collected: list[int] = []
    monkeypatch.setattr(rocksdb_module.gc, "collect", lambda *a: collected.append(1) or 0)
    store = _store({0: "db0", 1: "db1"})
    Store.revoke_partitions(store, _table(), {TP(TOPIC, 1)})
    assert store._dbs == {0: "db0"}
    assert collected == [1]
