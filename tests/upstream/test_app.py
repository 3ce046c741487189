"""Work-arounds 10, 16, 17 and 18: Faust's App, Worker and assignor as they ship."""

from __future__ import annotations

import io
from types import SimpleNamespace

import faust
import pytest
from faust.assignor.client_assignment import ClientAssignment


def exactly_once_app(name: str) -> faust.App:
    return faust.App(name, broker="kafka://127.0.0.1:9", processing_guarantee="exactly_once", store="memory://")


def test_faust_consumer_reads_in_transaction_once_when_created() -> None:
    """10: the Worker sets in_worker only in on_start; a consumer created before keeps no transactions."""
    app = exactly_once_app("upstream-10")
    consumer = app.consumer
    app.in_worker = True
    assert not consumer.in_transaction and not app.in_transaction  # both read (and cached) once
    early = exactly_once_app("upstream-10-early")
    early.in_worker = True  # what run_worker does before the consumer exists
    assert early.consumer.in_transaction


def test_faust_falls_back_to_no_transactions_silently(recwarn: pytest.WarningsRecorder) -> None:
    """18: exactly_once outside a worker means no transactions, without an error or a warning."""
    app = exactly_once_app("upstream-18")
    assert app.conf.processing_guarantee.value == "exactly_once"
    assert app.in_transaction is False and app.consumer.in_transaction is False
    assert not [w for w in recwarn if "transaction" in str(w.message).lower()]


def test_mode_worker_has_a_spinner_even_when_quiet() -> None:
    """16: Faust's Worker writes the spinner's cursor escape codes to a stream that is not a terminal."""
    from faust.worker import Worker

    out = io.StringIO()
    worker = Worker(exactly_once_app("upstream-16"), quiet=True, stdout=out, redirect_stdouts=False)
    assert worker.spinner is not None
    worker.spinner.update()
    assert "\x1b[?25l" in out.getvalue()


def test_faust_asserts_its_standby_assignment() -> None:
    """17: a member's Kafka assignment holds standby partitions only of the tables it knows itself, and
    PartitionAssignor.on_assignment asserts it equals what the leader sent."""
    assignment = ClientAssignment(actives={"raw": [0]}, standbys={"app-slots-changelog": [1]})
    knows_table = SimpleNamespace(changelog_topics={"app-slots-changelog"})
    other_role = SimpleNamespace(changelog_topics=set())
    assert sorted(assignment.kafka_protocol_assignment(knows_table)) == [("app-slots-changelog", [1]), ("raw", [0])]
    assert sorted(assignment.kafka_protocol_assignment(other_role)) == [("raw", [0])]  # the standby is dropped
