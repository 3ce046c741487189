"""The pipeline's Faust agents, one module per stage (installed as ``rag_streams.agents``).

Importing any of them applies the worker's wire-format settings to the codecs first: the
fingerprint byte order written (``RAG_AVRO_FINGERPRINT``) and the Confluent schema registry the
raw topic's decoder may use (``RAG_SCHEMA_REGISTRY_URL``).
"""

from rag_streams import codecs
from rag_streams.app import settings

codecs.configure(settings)
