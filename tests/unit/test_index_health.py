"""Index health's rules: the point count the version tables expect, the sudden-drop rule, and the
alerts and dashboard panels that carry them (the same numbers as the Python rule)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from rag_streams.rules.index_health import (
    DROP_MIN_POINTS,
    DROP_RATIO,
    TenantCounts,
    count_expected,
    is_sudden_drop,
    unexplained_drop,
)
from rag_streams.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def slots(tenant_doc: str, versions: list[int]) -> list[tuple[str, list[object]]]:
    return [(f"{tenant_doc}/{i}", [v, f"h{i}"]) for i, v in enumerate(versions)]


def test_expected_points_are_the_slots_at_their_documents_applied_version() -> None:
    docs = [
        ("acme/a.md", [1, False]),  # 3 chunks at v1
        ("acme/shrunk.md", [2, False]),  # v1 had 4 chunks, v2 has 2: slots 2, 3 stay at v1 (their points cleaned)
        ("acme/gone.md", [5, True]),  # deleted: its slots stay, its points are gone
        ("acme/dir/with/slashes.md", [7, False]),  # a doc_id with '/'
        ("beta/a.md", [1, False]),
        ("acme/none", None),  # a table row without a value is skipped
    ]
    chunk_slots = [
        *slots("acme/a.md", [1, 1, 1]),
        *slots("acme/shrunk.md", [2, 2, 1, 1]),
        *slots("acme/gone.md", [4, 4]),
        *slots("acme/dir/with/slashes.md", [7, 7]),
        *slots("acme/orphan.md", [1]),  # no applied version for it: not counted
        *slots("beta/a.md", [1, 1]),
    ]
    counts = count_expected(docs, chunk_slots)
    assert counts == {
        "acme": TenantCounts(documents=3, deleted_documents=1, expected_points=3 + 2 + 2),
        "beta": TenantCounts(documents=1, deleted_documents=0, expected_points=2),
    }
    assert count_expected(docs, chunk_slots, tenant="beta") == {"beta": counts["beta"]}
    assert count_expected(docs, chunk_slots, tenant="acm") == {}  # a prefix of a tenant is another tenant


def test_a_replacement_in_flight_expects_fewer_points_until_its_last_chunk() -> None:
    """v2's first chunk applied, the rest not yet: the doc is at v2 but slots 1, 2 still at v1."""
    docs = [("acme/a.md", [2, False])]
    assert count_expected(docs, slots("acme/a.md", [2, 1, 1]))["acme"].expected_points == 1
    assert count_expected(docs, slots("acme/a.md", [2, 2, 2]))["acme"].expected_points == 3


def test_a_drop_the_pipeline_explains_is_not_sudden() -> None:
    # 10,000 points; 5,000 deleted through the pipeline: expected fell as much
    assert unexplained_drop(10_000, 10_000, 5_000, 5_000) == 0
    assert not is_sudden_drop(10_000, 10_000, 5_000, 5_000)
    # the same fall with nothing deleted
    assert unexplained_drop(10_000, 10_000, 5_000, 10_000) == 5_000
    assert is_sudden_drop(10_000, 10_000, 5_000, 10_000)
    # growth (the expected count rising) is never a drop
    assert not is_sudden_drop(10_000, 10_000, 12_000, 12_000)


def test_the_drop_threshold_is_the_larger_of_the_floor_and_the_ratio() -> None:
    floor = DROP_MIN_POINTS
    assert not is_sudden_drop(300, 300, 300 - floor, 300)  # 100 lost from 300: at the floor, not over
    assert is_sudden_drop(300, 300, 300 - floor - 1, 300)
    big = 100_000
    limit = int(DROP_RATIO * big)
    assert not is_sudden_drop(big, big, big - limit, big)
    assert is_sudden_drop(big, big, big - limit - 1, big)


def alerts() -> dict[str, dict[str, str]]:
    doc = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def test_the_drop_alert_is_the_python_rule() -> None:
    rule = alerts()["RAGIndexPointsDropped"]
    expr = " ".join(rule["expr"].split())
    assert "max by (tenant) (rag_index_points offset 5m) - max by (tenant) (rag_index_points)" in expr
    assert "sum by (tenant) (rag_index_expected_points offset 5m) - sum by (tenant) (rag_index_expected_points)" in expr
    m = re.search(
        r">\s*clamp_min\(\s*([0-9.]+)\s*\*\s*max by \(tenant\) \(rag_index_points offset 5m\),\s*(\d+)\)$", expr
    )
    assert m, expr
    assert (float(m.group(1)), int(m.group(2))) == (DROP_RATIO, DROP_MIN_POINTS)
    assert rule["labels"]["severity"] == "critical"


def test_a_lasting_mismatch_alerts_after_15_minutes() -> None:
    rule = alerts()["RAGIndexPointsMismatch"]
    assert " ".join(rule["expr"].split()) == (
        "max by (tenant) (rag_index_points) != sum by (tenant) (rag_index_expected_points)"
    )
    assert rule["for"] == "15m"


def test_the_dashboard_shows_index_health() -> None:
    dash = json.loads((ROOT / "deploy" / "grafana" / "rag-streams.json").read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p.get("targets", []))
    assert "rag_index_points" in exprs and "rag_index_expected_points" in exprs
    assert "rag_index_points offset 5m" in exprs  # the drop the alert fires on


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_the_health_interval_is_validated(value: str) -> None:
    with pytest.raises(SettingsError, match="RAG_HEALTH_INTERVAL_S"):
        load_settings({"RAG_HEALTH_INTERVAL_S": value}, dotenv=None)
    assert load_settings({"RAG_HEALTH_INTERVAL_S": "0"}, dotenv=None).health_interval_s == 0
