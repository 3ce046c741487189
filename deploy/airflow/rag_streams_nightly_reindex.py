"""Airflow DAG: re-embed every tenant at night, paced, inside an off-peak window.

Copy this file into Airflow's dags/ folder on a host where `rag-streams` is installed and reaches
the pipeline (the same RAG_* environment as the workers: RAG_KAFKA_BOOTSTRAP, RAG_API_URL, ...).
Each tenant is one BashOperator running `rag-streams reindex --tenant T --rate RATE --window WINDOW`,
one after the other (the reindexes share the embedding CPU with the live pipeline). A reindex that
the window's end interrupts pauses until the next night's window; a killed one resumes from its
committed position when run again (see docs/reindex.md).

The commands are plain data (``commands()``) so that tests run exactly these command lines without
Airflow installed (tests/integration/test_pacing.py).
"""

from __future__ import annotations

import shlex
from datetime import datetime, timedelta

try:
    from airflow import DAG
    from airflow.operators.bash import BashOperator
except ImportError:  # no Airflow here: the commands below are still importable
    DAG = None
    BashOperator = None

#: the tenants to re-embed: edit to your own list
TENANTS = ["acme", "globex"]
#: documents per second of each reindex (a cap; embedding on a 2-core CPU does ~25 chunks/s)
RATE = 200
#: the daily off-peak window (RAG_WINDOW_TIMEZONE of the Airflow worker, default its local time)
WINDOW = "01:00-05:00"
#: when the DAG starts (inside the window)
SCHEDULE = "0 1 * * *"


def commands(tenants: list[str] = TENANTS, *, rate: float = RATE, window: str = WINDOW) -> list[list[str]]:
    """The argv of each task, in order: one `rag-streams reindex` per tenant."""
    return [
        ["rag-streams", "reindex", "--tenant", tenant, "--rate", f"{rate:g}", "--window", window] for tenant in tenants
    ]


if DAG is not None:
    with DAG(
        dag_id="rag_streams_nightly_reindex",
        schedule=SCHEDULE,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
        tags=["rag-streams"],
    ) as dag:
        previous = None
        for tenant, argv in zip(TENANTS, commands(), strict=True):
            task = BashOperator(
                task_id=f"reindex_{tenant}",
                bash_command=shlex.join(argv),
                # a reindex paused past the window's end waits for the next one: give it a day
                execution_timeout=timedelta(hours=24),
            )
            if previous is not None:
                previous >> task
            previous = task
