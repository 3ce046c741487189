"""Pure rules: records, ids, versions, chunking, the stages' plans, verify and reindex rules. No I/O."""
