"""The worker's HTTP API: search, documents, collection admin, errors and the OpenAPI document."""
