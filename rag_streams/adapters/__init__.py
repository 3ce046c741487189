"""I/O behind small protocols: wire codecs, the embedder, vector stores, cache, Kafka and Redis clients."""
