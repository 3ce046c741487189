"""Work-around 3: Faust's RocksDB store writes a table update to disk at once, outside the transaction.
Work-around 19: it runs a full garbage collection on every revocation, even one that closes nothing.
Work-around 20: its table manager sleeps a fixed second before it subscribes."""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

from faust.stores import rocksdb as rocksdb_module
from faust.stores.rocksdb import Store
from faust.tables.manager import TableManager


def test_faust_rocksdb_store_writes_at_once() -> None:
    # no write batch held until the transaction commits: an aborted transaction's rows stay on disk
    source = inspect.getsource(inspect.unwrap(Store._set))
    assert "db.put(key, value)" in source
    assert "transaction" not in source.lower() and "batch" not in source.lower()


def test_faust_rocksdb_store_collects_garbage_on_a_revoke_that_closes_nothing(monkeypatch: Any) -> None:
    # work-around 19: a full gc.collect() per table even when no database of the table was revoked
    collected: list[int] = []
    monkeypatch.setattr(rocksdb_module.gc, "collect", lambda *a: collected.append(1) or 0)
    store = SimpleNamespace(_dbs={}, logger=None)
    table = SimpleNamespace(changelog_topic=SimpleNamespace(topics={"app-versions-changelog"}))
    inspect.unwrap(Store.revoke_partitions)(store, table, set())
    assert collected == [1]


def test_faust_table_manager_sleeps_a_second_before_it_subscribes() -> None:
    # work-around 20: a fixed sleep, then the changelog channels (the subscription) and the Recovery service
    source = inspect.getsource(inspect.unwrap(TableManager.on_start))
    assert source.index("await self.sleep(1.0)") < source.index("self._update_channels()")
    assert source.index("self._update_channels()") < source.index("self.recovery.start()")
