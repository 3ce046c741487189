"""Vector stores: the shared protocol and rules, Qdrant Edge (embedded, the default) and a Qdrant server."""
