"""``python -m rag_streams.adapters.store.edge_optimize SHARD_DIR``: build a Qdrant Edge shard's HNSW index.

Run by the embedded store in a child process on a copy of a live shard (see ``edge_collections``):
``EdgeShard.optimize()`` holds the GIL until it is done, so it must not run in the worker.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m rag_streams.adapters.store.edge_optimize SHARD_DIR", file=sys.stderr)
        return 2
    os.nice(10)  # the worker's model and Kafka come first
    from qdrant_edge import EdgeShard

    shard = EdgeShard.load(argv[0])
    try:
        shard.optimize()
        shard.flush()
    finally:
        shard.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
