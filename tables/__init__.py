"""Version tables of the pipeline stages (installed as ``rag_streams.tables``)."""
