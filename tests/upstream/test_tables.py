"""Work-around 3: Faust's RocksDB store writes a table update to disk at once, outside the transaction."""

from __future__ import annotations

import inspect

from faust.stores.rocksdb import Store


def test_faust_rocksdb_store_writes_at_once() -> None:
    # no write batch held until the transaction commits: an aborted transaction's rows stay on disk
    source = inspect.getsource(inspect.unwrap(Store._set))
    assert "db.put(key, value)" in source
    assert "transaction" not in source.lower() and "batch" not in source.lower()
