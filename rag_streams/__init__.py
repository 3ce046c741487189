"""rag-streams: streaming ingestion and retrieval for RAG on Kafka, Faust and Qdrant."""

from pathlib import Path as _Path

__version__ = "0.1.0"

# The repository keeps the pipeline stages in top-level `agents/` and `tables/` (and the
# schemas in `schemas/avro/`), but they install as rag_streams.agents, rag_streams.tables and
# rag_streams.schemas, so they never shadow openai-agents' `agents` or PyTables' `tables`.
# In a source checkout, resolve those subpackages from the checkout's folders.
_root = _Path(__file__).resolve().parent.parent
if (_root / "setup.cfg").is_file() and not (_root / "rag_streams" / "agents").exists():
    __path__.append(str(_root))
