"""The canary's rules without a pipeline: what counts as cited, what it exports, the alert on two
failures in a row and its dashboard panels, the CLI's refusal of a bad timeout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rag_streams.cli import main
from rag_streams.observability import metrics
from rag_streams.observability.canary import ANSWER_DOC, DISTRACTOR_DOC, CanaryResult, _cited, record

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def answer(doc: str = ANSWER_DOC, version: int = 7, **extra: Any) -> dict[str, Any]:
    return {"results": [{"doc_id": doc, "version": version}], "degraded": False, "source": "store", **extra}


def test_cited_means_the_published_version_on_top_from_the_store() -> None:
    assert _cited(answer(), 7) and _cited(answer(version=8), 7)  # a later run's version is fine
    assert not _cited(answer(version=6), 7)  # the previous run's
    assert not _cited(answer(DISTRACTOR_DOC), 7)
    assert not _cited(answer(degraded=True, source="fallback"), 7)  # the fallback index proves nothing
    assert not _cited(answer(source="cache"), 7)
    assert not _cited({"results": [], "degraded": False, "source": "store"}, 7)


def gauges() -> tuple[float, float, float]:
    return (
        metrics.canary_success._value.get(),
        metrics.canary_consecutive_failures._value.get(),
        metrics.canary_latency_seconds._value.get(),
    )


def test_runs_are_exported_and_failures_in_a_row_counted() -> None:
    record(CanaryResult(True, "rag-canary", 1, 0.4, "cited"))
    assert gauges() == (1, 0, 0.4)
    record(CanaryResult(False, "rag-canary", 2, None, "not cited after 30 s"))
    record(CanaryResult(False, "rag-canary", 3, None, "not cited after 30 s"))
    assert gauges() == (0, 2, 0.4)  # the alert's condition; the latency stays the last success's
    record(CanaryResult(True, "rag-canary", 4, 0.5, "cited"))
    assert gauges() == (1, 0, 0.5)
    ok = CanaryResult(True, "rag-canary", 4, 0.5, "cited")
    assert ok.line().startswith("canary ok: rag-canary/canary-answer v4 cited at rank 1")
    assert CanaryResult(False, "rag-canary", 3, None, "x").line() == "canary FAILED: rag-canary/canary-answer v3: x"


def test_the_alert_fires_on_two_failed_runs_in_a_row_and_the_dashboard_shows_the_canary() -> None:
    rules = [
        r for g in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"] for r in g["rules"]
    ]
    canary = [r for r in rules if r["alert"] == "RAGCanaryFailing"]
    assert canary and canary[0]["expr"].replace(" ", "") == "max(rag_canary_consecutive_failures)>=2"
    dashboard = json.loads((DEPLOY / "grafana" / "rag-streams.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for name in ("rag_canary_success", "rag_canary_latency_seconds", "rag_canary_consecutive_failures"):
        assert name in exprs
    assert "rag_fallback_answers_total" in exprs and "rag_fallback_chunks" in exprs


@pytest.mark.parametrize("timeout", ["0", "-1", "nan"])
def test_the_cli_refuses_a_bad_timeout_in_one_line(timeout: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["canary", "--timeout", timeout]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--timeout" in err
