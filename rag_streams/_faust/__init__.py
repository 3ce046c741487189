"""Every Faust/aiokafka work-around of rag-streams, in one package (see registry.py)."""
