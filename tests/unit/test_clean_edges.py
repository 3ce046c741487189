"""Clean edges (issue 16 item 4): no progress bars or terminal escape codes in non-TTY logs, the
document endpoints' producer stopped with the worker, a worker refusing missing topics with one
line, and `rag-streams kafka --help` telling where the broker listens and keeps its data."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rag_streams.commands.worker import check_topics, faust_worker
from rag_streams.errors import CliError
from rag_streams.pipeline.topics import TopicNames, missing_topics, topic_specs
from rag_streams.settings import load_settings


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    env.update(RAG_KAFKA_BOOTSTRAP="127.0.0.1:1", RAG_KAFKA_HOME=str(tmp_path / "kafka"))
    return env


def test_kafka_help_names_the_port_controller_and_data(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rag_streams.cli", "kafka", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env=_env(tmp_path),
    ).stdout
    text = " ".join(out.split())
    assert "first host:port in RAG_KAFKA_BOOTSTRAP" in text
    assert "controller takes the next port (RAG_KAFKA_BOOTSTRAP's port + 1)" in text
    assert "$RAG_KAFKA_HOME/node-<port>/" in text and "~/.cache/rag-streams/kafka" in text


def test_missing_topics_stop_the_worker_with_one_line() -> None:
    settings = load_settings()
    names = TopicNames.for_prefix(settings.topic_prefix)
    everything = [spec.name for spec in topic_specs(settings)]
    assert missing_topics(settings, [*everything, "__consumer_offsets"]) == []
    check_topics(settings, everything)  # all there: no complaint

    with pytest.raises(CliError) as err:
        check_topics(settings, ["__consumer_offsets", names.raw])
    message = str(err.value)
    assert "\n" not in message and "run `rag-streams topics create`" in message
    assert names.chunks in message and names.deadletter in message and f"{names.raw}," not in message


def test_cli_turns_progress_bars_off_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from rag_streams.cli import main\n"
        "main(['kafka', 'status'])\n"  # any command: main() decides before tqdm is imported
        "from tqdm import tqdm\n"
        "for _ in tqdm(range(3), desc='Batches'): pass\n"
        "from huggingface_hub.utils import are_progress_bars_disabled\n"
        "print('hub bars off:', are_progress_bars_disabled())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env(tmp_path))
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr and "Batches" not in proc.stderr
    assert "hub bars off: True" in proc.stdout


def _pipeline(tmp_path: Path) -> Any:
    from rag_streams.pipeline.app import create_app
    from rag_streams.settings import load_settings

    return create_app(load_settings({"RAG_DATA_DIR": str(tmp_path)}, dotenv=None))


def test_faust_worker_writes_no_spinner_escape_codes(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    app, settings = pipeline.app, pipeline.settings
    out = io.StringIO()  # a log file or pipe, not a terminal
    worker = faust_worker(app, settings)
    worker.stdout = worker.stderr = out  # mode binds sys.stdout as a default argument: set it here
    if worker.spinner is not None:
        worker.spinner.file = out
    worker._on_startup_end_spinner()  # what Faust does once the worker has started
    worker.on_worker_shutdown()
    assert "\x1b" not in out.getvalue() and "\b" not in out.getvalue()


async def test_document_producer_is_stopped_with_the_worker(tmp_path: Path) -> None:
    from rag_streams.adapters.producer import DocumentProducer
    from rag_streams.http import api
    from rag_streams.http import documents as api_documents

    pipeline = _pipeline(tmp_path)
    documents = api_documents.register(api.Api(pipeline))
    producer = DocumentProducer(pipeline.settings)
    documents._producer = producer
    try:
        await pipeline.app.on_before_shutdown.send()
    finally:
        left, documents._producer = documents._producer, None
    assert left is None
    assert producer._producer._closed


async def test_the_worker_closes_its_services_after_the_app_stopped(tmp_path: Path) -> None:
    """The Worker's on_shutdown (mode runs it after stopping the app's agents and consumer) closes
    the vector store, the answer cache and the model thread; closing again is harmless."""
    from rag_streams.adapters.services import Services
    from rag_streams.adapters.store.qdrant import QdrantVectorStore
    from rag_streams.testing import MemoryAnswerCache

    pipeline = _pipeline(tmp_path)
    closed: list[str] = []

    class Store(QdrantVectorStore):
        async def close(self) -> None:
            closed.append("store")
            await super().close()

    class Cache(MemoryAnswerCache):
        async def close(self) -> None:
            closed.append("cache")

    services = Services(pipeline.settings, store=Store.in_memory(), cache=Cache(60))
    assert await services.run_model(sum, [1, 2]) == 3  # starts the model thread
    worker = faust_worker(pipeline.app, pipeline.settings, services)
    await worker.on_shutdown()
    assert closed == ["store", "cache"] and services._model_thread is None
    await services.close()
    assert closed == ["store", "cache"]
