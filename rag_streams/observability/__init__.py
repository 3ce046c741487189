"""Metrics, logs, consumer lag and its exporter, stall diagnostics."""
