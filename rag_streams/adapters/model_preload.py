"""Loading the default embedding model on a background thread from the worker's start.

Importing torch, transformers and sentence-transformers is the longest part of a worker's start
(about 6 s of CPU on a 2-core machine; docs/operations.md). Started when the worker starts, it
overlaps the Kafka side (joining the group, starting the transactional producers, restoring the
tables), and the first document waits only for what is left of it instead of paying it all after
the worker is ready. The load is the same call :meth:`Services.embedder` made on first use, so a
model that cannot be loaded fails the same way; the worker also stops at once with one line
(``rag_streams.pipeline.app``'s model check) instead of failing on its first document.

While the model's libraries import, Python's cyclic garbage collector is held back (they create
millions of objects, and each full collection walks all of them), and what they created is then
frozen (:func:`gc.freeze`: never scanned again, as CPython's docs suggest for long-lived startup
state), so collections after the start, such as the one Faust's RocksDB store runs for every table
at each rebalance, walk only what the worker creates afterwards. They are unfrozen at exit, so
the interpreter's last collection frees them as before.
"""

from __future__ import annotations

import atexit
import gc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

__all__ = ["start_preload"]
log = logging.getLogger(__name__)

#: generation-0 threshold while the model's libraries import (CPython's default is 700)
STARTUP_GC_THRESHOLD = 100_000


def start_preload(load: Callable[[], Any]) -> Future[Any]:
    """Run ``load()`` on a daemon thread now; its result (or exception) in the returned future.
    The cyclic GC is held back until it returns, then everything alive is frozen."""
    future: Future[Any] = Future()
    thresholds = gc.get_threshold()
    gc.set_threshold(STARTUP_GC_THRESHOLD, *thresholds[1:])

    def run() -> None:
        started = time.monotonic()
        try:
            result = load()
            log.info("embedding model imported and loaded on a thread in %.1f s", time.monotonic() - started)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the model
            future.set_exception(exc)
        else:
            future.set_result(result)
        finally:
            gc.freeze()
            gc.set_threshold(*thresholds)
            # frozen objects are left out of the collection at exit too, and native extensions
            # (nanobind: triton's) then report them as leaks on stderr
            atexit.register(gc.unfreeze)

    future.set_running_or_notify_cancel()
    threading.Thread(target=run, name="rag-model-preload", daemon=True).start()
    return future
