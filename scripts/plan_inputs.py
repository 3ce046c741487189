"""Measure the inputs `rag-streams plan` takes as defaults (docs/multitenancy.md), on this machine.

    PYTHONPATH=. python scripts/plan_inputs.py [--queries 300] [--chunks 2000]

- payload: the JSON size of the Qdrant payload of each chunk (rag_streams.rules.indexing.payload), and the
  Avro size of its rag.embeddings.upserts message, for the bench's default corpus (the installed
  distributions' long descriptions) cut exactly as the chunk stage cuts them;
- query embedding: one question at a time through the model, as the query API embeds it
  (p50 / p95 / p99 over ``--queries`` calls after a warm-up).
Prints one JSON object. Figures on a shared machine are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import orjson


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--chunks", type=int, default=2000)
    args = ap.parse_args()

    from rag_streams.adapters.codecs import EMBEDDING
    from rag_streams.adapters.embedding import SentenceTransformerEmbedder, to_bytes
    from rag_streams.bench.corpus import installed_descriptions
    from rag_streams.bench.offline import chunk_corpus
    from rag_streams.bench.stats import percentiles
    from rag_streams.rules.indexing import payload
    from rag_streams.rules.records import EmbeddingUpsert
    from rag_streams.settings import load_settings

    settings = load_settings()
    embedder = SentenceTransformerEmbedder(device="cpu", batch_size=settings.embed_batch)
    _, chunks = chunk_corpus(installed_descriptions(), embedder, settings, args.chunks)
    vector = to_bytes(np.zeros(embedder.dim, dtype=np.float32))
    items = [EmbeddingUpsert.of(c, vector, embedder.model_name, embedder.dim) for c in chunks]
    payload_sizes = [len(orjson.dumps(payload(i))) for i in items]
    text_sizes = [len(i.text.encode()) for i in items]
    message_sizes = [len(EMBEDDING.encode(i)) for i in items]

    questions = [
        line.split("\t")[0]
        for line in (Path("rag_streams/sample_corpus/QUESTIONS.txt").read_text().splitlines())
        if line.strip()
    ]
    for q in questions[:5]:  # warm-up
        embedder.embed([q])
    latencies = []
    for n in range(args.queries):
        t0 = time.perf_counter()
        embedder.embed([questions[n % len(questions)]])
        latencies.append(time.perf_counter() - t0)

    import torch

    print(
        json.dumps(
            {
                "chunks": len(items),
                "chunk_tokens": settings.chunk_tokens,
                "payload_json_bytes_mean": round(float(np.mean(payload_sizes)), 1),
                "payload_json_bytes_p95": int(np.percentile(payload_sizes, 95)),
                "text_bytes_mean": round(float(np.mean(text_sizes)), 1),
                "embedding_message_bytes_mean": round(float(np.mean(message_sizes)), 1),
                "query_embed": percentiles(latencies, 1000.0, "ms"),
                "torch_threads": torch.get_num_threads(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
