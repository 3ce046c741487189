"""create_app: nothing happens at import; the app holds exactly the stages, tables and routes of
its roles, read from the one stage graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag_streams.pipeline.app import create_app
from rag_streams.pipeline.stages import GRAPH, ROLES
from rag_streams.pipeline.topics import TopicNames, topic_specs
from rag_streams.rules.lag import pipeline_stages
from rag_streams.settings import load_settings

_IMPORT_ALL = """
import importlib, json, pathlib, sys
import rag_streams, rag_streams.agents, rag_streams.tables
names = []
for package in (rag_streams, rag_streams.agents, rag_streams.tables):
    for path in sorted(pathlib.Path(package.__path__[0]).rglob("*.py")):
        parts = path.relative_to(package.__path__[0]).with_suffix("").parts
        names.append(".".join((package.__name__, *parts)).removesuffix(".__init__"))
names = [n for n in names if not n.endswith(("__main__", "edge_optimize"))]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "faust": "faust" in sys.modules}))
"""


def test_importing_any_module_reads_no_environment_and_builds_nothing(tmp_path: Path) -> None:
    """An invalid RAG_* variable cannot break an import: settings are read by create_app's caller."""
    env = {"PATH": "/usr/bin:/bin", "RAG_TOPIC_PARTITIONS": "not-a-number", "RAG_DATA_DIR": str(tmp_path / "d")}
    env.update({k: v for k, v in os.environ.items() if k == "PYTHONPATH"})  # a worktree's own sources
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    modules = json.loads(out.stdout.strip().splitlines()[-1])["modules"]
    assert {"rag_streams.agents.chunk_documents", "rag_streams.http.api", "rag_streams.pipeline.app"} <= set(modules)
    assert not (tmp_path / "d").exists()  # no data directory made at import
    proc = subprocess.run(
        [sys.executable, "-c", "import rag_streams.agents"], capture_output=True, env=env, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0


@pytest.mark.parametrize("roles", [("chunk",), ("embed",), ("index",), ("chunk", "embed"), ROLES, ()])
def test_the_app_registers_exactly_its_roles_agents_and_tables(tmp_path: Path, roles: tuple[str, ...]) -> None:
    p = create_app(load_settings({"RAG_DATA_DIR": str(tmp_path), "RAG_BULK_LANE": "true"}, dotenv=None), roles=roles)
    assert set(p.agents) == set(roles)
    assert {agent.name for agent in p.app.agents.values()} >= {
        f"{spec.agent}.{spec.agent.rsplit('.', 1)[1]}" for spec in GRAPH if spec.role in roles
    }
    assert {agent.name.rsplit(".", 1)[0] for agent in p.app.agents.values()} == {
        spec.agent for spec in GRAPH if spec.role in roles
    }
    wanted = {t for spec in GRAPH if spec.role in roles for t in spec.tables}
    assert set(p.tables) == wanted == set(p.app.tables)
    for spec in GRAPH:  # each agent consumes its declared input topic; one agent per input (a bulk lane)
        if spec.role in roles:
            assert p.agents[spec.role].channel.topics == (getattr(p.names, spec.input),)
    consumed = sorted(topic for agent in p.app.agents.values() for topic in agent.channel.topics)
    assert consumed == sorted(getattr(p.names, t) for spec in GRAPH if spec.role in roles for t in spec.inputs)
    paths = set(p.app.web.views)
    assert {"/v1/tenants/{tenant}/search", "/healthz", "/readyz", "/metrics"} <= paths
    assert ("/v1/tenants/{tenant}/collections" in paths) == ("index" in roles or not roles)


def test_two_apps_do_not_share_state(tmp_path: Path) -> None:
    a = create_app(load_settings({"RAG_DATA_DIR": str(tmp_path / "a"), "RAG_TOPIC_PREFIX": "a"}, dotenv=None))
    b = create_app(load_settings({"RAG_DATA_DIR": str(tmp_path / "b"), "RAG_TOPIC_PREFIX": "b"}, dotenv=None))
    assert a.app is not b.app and a.services is not b.services
    assert a.topic("raw").get_topic_name() == "a.documents.raw" and b.topic("raw").get_topic_name() == "b.documents.raw"


def test_lag_and_topic_creation_read_the_stage_graph() -> None:
    settings = load_settings({}, dotenv=None)
    names = TopicNames.for_prefix(settings.topic_prefix)
    assert pipeline_stages(settings) == [(spec.role, getattr(names, t)) for spec in GRAPH for t in spec.inputs]
    assert ("embed", names.chunks_bulk) in pipeline_stages(settings)  # the bulk lane's lag is the embed stage's
    created = [spec.name for spec in topic_specs(settings)]
    declared = {getattr(names, t) for spec in GRAPH for t in (*spec.inputs, *spec.outputs)}
    assert set(created) == declared and len(created) == len(declared)
    assert created[0] == names.raw and created[-1] == names.deadletter


def test_a_worker_on_the_embedded_store_does_not_import_qdrant_client(tmp_path: Path) -> None:
    """qdrant-client takes seconds to import (its pydantic models): only RAG_QDRANT_URL needs it, and
    a restarted worker should not pay for it before it processes records."""
    code = (
        "import sys\n"
        "from rag_streams.cli import build_parser\n"
        "from rag_streams.pipeline.app import create_app\n"
        "from rag_streams.errors import is_transient\n"
        "from rag_streams.settings import load_settings\n"
        f"p = create_app(load_settings({{'RAG_DATA_DIR': {str(tmp_path)!r}}}, dotenv=None))\n"
        "store = p.services.store()\n"
        "assert not is_transient(ValueError('an Edge store error'))\n"
        "print(type(store).__name__, 'qdrant_client' in sys.modules)\n"
    )
    env = {"PATH": "/usr/bin:/bin", **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["EdgeVectorStore", "False"]


@pytest.mark.parametrize("lane", ["true", "false"])
def test_the_bulk_topics_wait_by_design_for_the_livelock_check(tmp_path: Path, lane: str) -> None:
    """Work-around 22: the bulk lane's source topics are registered with the worker's lanes; without
    the lane nothing is (Faust's own check applies to every topic)."""
    from rag_streams._faust.livelock import waiting_by_design

    p = create_app(load_settings({"RAG_DATA_DIR": str(tmp_path), "RAG_BULK_LANE": lane}, dotenv=None))
    registered = waiting_by_design(p.app)
    if lane == "false":
        assert registered == {}
        return
    assert set(registered) == {p.names.raw_bulk, p.names.chunks_bulk}
    assert all(alive == p.lanes.bulk_alive for alive in registered.values())
