"""What the CLI's commands do (rag_streams.cli parses and dispatches)."""
