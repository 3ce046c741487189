"""The pipeline's Faust agents, one module per stage (installed as ``rag_streams.agents``).

Each module's ``register(pipeline)`` creates its stage's tables and its ``@app.agent`` on the
pipeline's app; :func:`rag_streams.pipeline.app.create_app` calls it for the worker's roles.
"""
