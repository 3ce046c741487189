"""The deployment files agree with the code: metric names, RAG_* settings, probes, commands.

Covers docker-compose.kafka.yml, Dockerfile, Procfile and everything under deploy/.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from rag_streams.observability.metrics import METRIC_NAMES
from rag_streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.kafka.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROCFILE = ROOT / "Procfile"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "rag-streams.json"
K8S = DEPLOY / "kubernetes"

METRIC_RE = re.compile(r"\brag_[a-z_]+\b")
SETTING_RE = re.compile(r"\bRAG_[A-Z0-9_]+\b")
SUFFIXES = ("_bucket", "_sum", "_count")
SETTING_NAMES = frozenset(v for v, _, _ in Settings.describe())
CLI_SUBCOMMANDS = {"worker", "serve"}
ROLES = {"chunk", "embed", "index"}


# --------------------------------------------------------------------------- helpers
def yaml_files() -> list[Path]:
    files = sorted(DEPLOY.rglob("*.yml")) + sorted(DEPLOY.rglob("*.yaml")) + [COMPOSE]
    return files


def load_yaml(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.y*ml")):
        docs += load_yaml(path)
    return docs


def k8s_kind(kind: str) -> list[dict]:
    return [d for d in k8s_docs() if d.get("kind") == kind]


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def env_dict(env: Any) -> dict[str, str]:
    """Compose `environment:` as a dict, whether written as a mapping or a list."""
    if env is None:
        return {}
    if isinstance(env, dict):
        return {str(k): "" if v is None else str(v) for k, v in env.items()}
    out = {}
    for item in env:
        key, _, value = str(item).partition("=")
        out[key] = value
    return out


def command_words(command: Any) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def metric_names(expr: str) -> set[str]:
    names = set()
    for name in METRIC_RE.findall(expr):
        for suffix in SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        names.add(name)
    return names


def alert_rules() -> list[dict]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_panels(panels: list[dict] | None = None) -> list[dict]:
    if panels is None:
        panels = json.loads(DASHBOARD.read_text())["panels"]
    out = []
    for panel in panels:
        out.append(panel)
        out += dashboard_panels(panel.get("panels") or [])
    return out


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard_panels() for t in p.get("targets", []) if t.get("expr")]


def threshold(expr: str) -> float:
    m = re.search(r">\s*([0-9.eE+]+)\s*$", expr.strip())
    assert m, f"no '> N' threshold at the end of {expr!r}"
    return float(m.group(1))


def duration_s(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+)(ms|s|m|h|d)", text):
        assert m.start() == pos, f"bad duration {text!r}"
        total += int(m.group(1)) * units[m.group(2)]
        pos = m.end()
    assert pos == len(text) and text, f"bad duration {text!r}"
    return total


# --------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_file_parses(path: Path) -> None:
    docs = load_yaml(path)
    assert docs, f"{path} holds no YAML document"
    assert all(isinstance(d, dict) for d in docs), f"{path}: every document must be a mapping"


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.json")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_json_file_parses(path: Path) -> None:
    assert isinstance(json.loads(path.read_text()), dict)


def test_expected_files_exist() -> None:
    for path in (
        COMPOSE,
        DOCKERFILE,
        PROCFILE,
        ALERTS,
        PROMETHEUS,
        DASHBOARD,
        K8S / "configmap.yaml",
        K8S / "keda-scaledobject.yaml",
        K8S / "hpa.yaml",
    ):
        assert path.is_file(), f"missing {path.relative_to(ROOT)}"


# --------------------------------------------------------------------------- metric names
def test_alert_metrics_are_exported() -> None:
    rules = alert_rules()
    assert rules
    for rule in rules:
        unknown = metric_names(rule["expr"]) - METRIC_NAMES
        assert not unknown, (
            f"alert {rule.get('alert')}: {sorted(unknown)} not exported by rag_streams.observability.metrics"
        )


def test_dashboard_metrics_are_exported() -> None:
    exprs = dashboard_exprs()
    assert exprs
    for expr in exprs:
        unknown = metric_names(expr) - METRIC_NAMES
        assert not unknown, (
            f"dashboard query {expr!r}: {sorted(unknown)} not exported by rag_streams.observability.metrics"
        )


def test_hpa_metric_is_exported() -> None:
    hpas = k8s_kind("HorizontalPodAutoscaler")
    assert hpas
    for hpa in hpas:
        assert hpa["apiVersion"] == "autoscaling/v2"
        metrics = hpa["spec"]["metrics"]
        assert any(
            m["type"] == "External" and m["external"]["metric"]["name"] == "rag_kafka_consumer_lag" for m in metrics
        ), f"HPA {hpa['metadata']['name']} does not scale on rag_kafka_consumer_lag"
        for m in metrics:
            if m["type"] == "External":
                assert m["external"]["metric"]["name"] in METRIC_NAMES


# --------------------------------------------------------------------------- settings names
def setting_sources() -> list[Path]:
    return [COMPOSE, DOCKERFILE, *sorted(K8S.glob("*.y*ml"))]


@pytest.mark.parametrize("path", setting_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_rag_variables_are_real_settings(path: Path) -> None:
    unknown = set(SETTING_RE.findall(path.read_text())) - SETTING_NAMES
    assert not unknown, f"{path.relative_to(ROOT)} names {sorted(unknown)}, which are not settings"


def test_structured_env_keys_are_real_settings() -> None:
    """Keys set through compose `environment:` and the ConfigMap/Secret (not just regex hits)."""
    keys: set[str] = set()
    for _name, service in compose()["services"].items():
        keys |= {k for k in env_dict(service.get("environment")) if k.startswith("RAG_")}
    for doc in k8s_docs():
        if doc.get("kind") in ("ConfigMap", "Secret"):
            keys |= set(doc.get("data") or {}) | set(doc.get("stringData") or {})
    assert keys
    assert keys <= SETTING_NAMES, f"not settings: {sorted(keys - SETTING_NAMES)}"


# --------------------------------------------------------------------------- compose
def test_compose_services() -> None:
    services = compose()["services"]
    for name in ("kafka", "qdrant", "redis", "prometheus", "grafana", "worker", "api", "topics"):
        assert name in services, f"compose lacks service {name}"
        assert services[name].get("image") or services[name].get("build"), f"{name} has no image or build"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["qdrant"]["image"].split(":")[0] == "qdrant/qdrant"
    assert services["redis"]["image"].split(":")[0] == "redis"
    assert services["prometheus"]["image"].split(":")[0] == "prom/prometheus"
    assert services["grafana"]["image"].split(":")[0] == "grafana/grafana"
    for name in ("worker", "api", "topics"):
        build = services[name].get("build")
        assert build, f"{name} must be built from the Dockerfile"
        dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
        context = build.get("context", ".") if isinstance(build, dict) else build
        assert (ROOT / context / dockerfile).is_file()


def test_compose_commands() -> None:
    services = compose()["services"]
    assert command_words(services["worker"].get("command"))[:2] == ["rag-streams", "worker"]
    assert command_words(services["api"].get("command")) == ["rag-streams", "serve"]
    assert command_words(services["topics"].get("command")) == ["rag-streams", "topics", "create"]
    for name, service in services.items():
        words = command_words(service.get("command"))
        if words and words[0] == "rag-streams" and words[1] == "worker" and "--role" in words:
            assert words[words.index("--role") + 1] in ROLES, f"{name}: unknown role"


def test_compose_kafka_kraft_with_transactions() -> None:
    env = env_dict(compose()["services"]["kafka"].get("environment"))
    roles = {r.strip() for r in env.get("KAFKA_PROCESS_ROLES", "").split(",")}
    assert roles == {"broker", "controller"}, "Kafka must run KRaft (broker,controller) in one node"
    assert env.get("KAFKA_CONTROLLER_QUORUM_VOTERS"), "KRaft needs controller quorum voters"
    assert env.get("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR") == "1"
    assert env.get("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR") == "1"
    assert env.get("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR") == "1"


def test_compose_app_services_reach_the_stack() -> None:
    services = compose()["services"]
    kafka_ports = set()
    for listener in env_dict(services["kafka"]["environment"])["KAFKA_ADVERTISED_LISTENERS"].split(","):
        kafka_ports.add(listener.split("://", 1)[1])
    for name in ("worker", "api", "topics"):
        env = env_dict(services[name].get("environment"))
        assert env.get("RAG_KAFKA_BOOTSTRAP") in kafka_ports, f"{name}: RAG_KAFKA_BOOTSTRAP is not a Kafka listener"
        if name != "topics":
            assert env.get("RAG_QDRANT_URL", "").startswith("http://qdrant:")
            assert env.get("RAG_REDIS_URL", "").startswith("redis://redis:")
            assert env.get("RAG_WEB_HOST") == "0.0.0.0", f"{name} must listen on all interfaces in a container"
    # Settings accept the values compose gives (no ${...} placeholders left unresolved in numbers).
    env = env_dict(services["worker"]["environment"])
    Settings(
        kafka_bootstrap=env["RAG_KAFKA_BOOTSTRAP"],
        qdrant_url=env["RAG_QDRANT_URL"],
        processing_guarantee=env["RAG_PROCESSING_GUARANTEE"],
        log_format=env["RAG_LOG_FORMAT"],
        topic_partitions=int(env["RAG_TOPIC_PARTITIONS"]),
        web_port=int(env["RAG_WEB_PORT"]),
        embed_batch=int(env["RAG_EMBED_BATCH"]),
        topic_prefix=env["RAG_TOPIC_PREFIX"],
    )


def test_compose_mounts_exist() -> None:
    """Every bind mount from the repository points at a file or folder that exists."""
    services = compose()["services"]
    mounted = []
    for name, service in services.items():
        for volume in service.get("volumes", []) or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
                mounted.append((name, source, volume.split(":")[1]))
    sources = {(n, s) for n, s, _ in mounted}
    assert ("prometheus", "./deploy/prometheus/prometheus.yml") in sources
    assert ("prometheus", "./deploy/prometheus/alerts.yml") in sources
    assert ("grafana", "./deploy/grafana/rag-streams.json") in sources
    assert ("grafana", "./deploy/grafana/provisioning") in sources
    # Prometheus loads the rules from where compose mounts them.
    targets = {s: t for n, s, t in mounted if n == "prometheus"}
    assert targets["./deploy/prometheus/alerts.yml"] in yaml.safe_load(PROMETHEUS.read_text())["rule_files"]
    # Grafana's dashboard provider reads the folder the dashboard is mounted in.
    dash_target = {s: t for n, s, t in mounted if n == "grafana"}["./deploy/grafana/rag-streams.json"]
    providers = [
        p
        for f in (DEPLOY / "grafana" / "provisioning").rglob("*.y*ml")
        for d in load_yaml(f)
        for p in d.get("providers", [])
    ]
    assert any(dash_target.startswith(p["options"]["path"].rstrip("/") + "/") for p in providers)


# --------------------------------------------------------------------------- Dockerfile, Procfile
def test_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^RUN .*\bpip install\b[^\n]*\s\.(\s|$)", text, re.M), "the image must `pip install .`"
    assert "6066" in text


def procfile() -> dict[str, str]:
    entries = {}
    for line in PROCFILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        assert sep and re.fullmatch(r"[A-Za-z0-9_-]+", name), f"bad Procfile line {line!r}"
        assert name not in entries, f"Procfile process {name} twice"
        entries[name] = command.strip()
    return entries


def test_procfile() -> None:
    entries = procfile()
    assert {"worker", "web"} <= set(entries)
    for name, command in entries.items():
        assert command.startswith("rag-streams "), f"Procfile {name}: {command!r}"
        words = shlex.split(command)
        assert words[1] in CLI_SUBCOMMANDS, f"Procfile {name}: unknown subcommand {words[1]!r}"
        if "--role" in words:
            assert words[1] == "worker"
            assert set(words[words.index("--role") + 1].split(",")) <= ROLES
    assert shlex.split(entries["worker"])[1] == "worker"
    assert shlex.split(entries["web"])[1] == "serve"


# --------------------------------------------------------------------------- Kubernetes
def deployment_role(dep: dict) -> str:
    container = dep["spec"]["template"]["spec"]["containers"][0]
    words = command_words(container.get("command")) + command_words(container.get("args"))
    assert words[0] == "rag-streams", f"{dep['metadata']['name']}: command must be rag-streams"
    assert words[1] in CLI_SUBCOMMANDS
    if words[1] == "serve":
        return "api"
    assert "--role" in words, f"{dep['metadata']['name']}: worker without --role"
    return words[words.index("--role") + 1]


def test_k8s_deployments_per_role() -> None:
    deployments = k8s_kind("Deployment")
    roles = [deployment_role(d) for d in deployments]
    assert sorted(roles) == sorted(ROLES | {"api"}), roles


def test_k8s_deployments_probes_resources_env() -> None:
    configmaps = {d["metadata"]["name"] for d in k8s_kind("ConfigMap")}
    deployments = k8s_kind("Deployment")
    assert deployments
    for dep in deployments:
        name = dep["metadata"]["name"]
        pod = dep["spec"]["template"]
        selector = dep["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod["metadata"]["labels"].items(), f"{name}: selector does not match pod"
        for c in pod["spec"]["containers"]:
            for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                assert probe in c, f"{name}: no {probe}"
                assert c[probe]["httpGet"]["path"] == path, f"{name}: {probe} must GET {path}"
                assert c[probe]["httpGet"]["port"] in (6066, "http"), f"{name}: {probe} port"
            assert 6066 in [p["containerPort"] for p in c.get("ports", [])]
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= set(res.get("requests", {})), f"{name}: resource requests"
            assert {"cpu", "memory"} <= set(res.get("limits", {})), f"{name}: resource limits"
            refs = {e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e}
            assert refs and refs <= configmaps, f"{name}: env must come from the ConfigMap"


def test_k8s_configmap_serves_http_on_6066() -> None:
    (cm,) = k8s_kind("ConfigMap")
    data = cm["data"]
    assert data.get("RAG_WEB_PORT") == "6066"
    assert data.get("RAG_WEB_HOST") == "0.0.0.0"
    assert data.get("RAG_QDRANT_URL", "").startswith("http"), "pods share no disk: a Qdrant server is needed"
    assert all(isinstance(v, str) for v in data.values()), "ConfigMap values must be strings"


def test_keda_scaled_objects() -> None:
    deployments = {d["metadata"]["name"]: deployment_role(d) for d in k8s_kind("Deployment")}
    scaled = k8s_kind("ScaledObject")
    assert scaled
    topic_for_role = {}
    for so in scaled:
        target = so["spec"]["scaleTargetRef"]["name"]
        assert target in deployments, f"ScaledObject targets unknown Deployment {target}"
        for trig in so["spec"]["triggers"]:
            assert trig["type"] == "kafka"
            meta = trig["metadata"]
            assert meta["consumerGroup"] == "rag-streams"
            assert int(meta["lagThreshold"]) > 0
            topic_for_role[deployments[target]] = meta["topic"]
    assert topic_for_role.get("embed") == "rag.documents.chunks"
    assert topic_for_role.get("chunk") == "rag.documents.raw"


def test_hpa_targets_deployments() -> None:
    deployments = {d["metadata"]["name"]: deployment_role(d) for d in k8s_kind("Deployment")}
    topic_for_role = {}
    for hpa in k8s_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]["name"]
        assert target in deployments
        assert hpa["spec"]["maxReplicas"] >= hpa["spec"].get("minReplicas", 1)
        for m in hpa["spec"]["metrics"]:
            labels = m["external"]["metric"].get("selector", {}).get("matchLabels", {})
            topic_for_role[deployments[target]] = labels.get("topic")
    assert topic_for_role.get("embed") == "rag.documents.chunks"
    assert topic_for_role.get("chunk") == "rag.documents.raw"


# --------------------------------------------------------------------------- Prometheus
def test_prometheus_scrapes_worker_and_api() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    assert {"worker:6066", "api:6066"} <= targets
    services = compose()["services"]
    for target in ("worker:6066", "api:6066"):
        assert target.split(":")[0] in services


def test_alert_rules_well_formed() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in rules:
        assert rule.get("expr") and rule.get("labels", {}).get("severity"), rule
        assert rule.get("annotations", {}).get("summary"), rule
        duration_s(str(rule.get("for", "0s")))


def test_alert_p95_query_latency_800ms_for_2m() -> None:
    matches = [
        r
        for r in alert_rules()
        if "rag_vectorstore_query_time_seconds_bucket" in r["expr"]
        and re.search(r"histogram_quantile\(\s*0\.95\s*,", r["expr"])
    ]
    assert matches, "no p95 query latency alert"
    assert any(threshold(r["expr"]) == 0.8 and duration_s(r["for"]) == 120 for r in matches), (
        "the p95 query latency alert must fire above 0.8 s (800 ms) for 2m"
    )


def test_alert_consumer_lag_10k_for_5m() -> None:
    matches = [r for r in alert_rules() if "rag_kafka_consumer_lag" in metric_names(r["expr"])]
    assert matches, "no consumer lag alert"
    assert any(
        re.search(r"\bsum\b", r["expr"]) and threshold(r["expr"]) == 10000 and duration_s(r["for"]) == 300
        for r in matches
    ), "the consumer lag alert must fire when total lag > 10000 for 5m"


def test_alerts_cover_operations() -> None:
    exprs = " ".join(r["expr"] for r in alert_rules())
    assert re.search(r"increase\(rag_deadletter_total\[", exprs), "no dead letter alert"
    assert re.search(r"max[^=]*rag_circuit_breaker_state\)\s*==\s*2", exprs), "no circuit breaker open alert"
    assert re.search(r'rag_pipeline_latency_seconds_bucket\{[^}]*stage="index"', exprs), "no freshness alert"


def test_freshness_p99_alert_fires_above_the_loaded_target() -> None:
    rules = [r for r in alert_rules() if "rag_freshness_seconds" in metric_names(r["expr"])]
    assert any("histogram_quantile(0.99" in r["expr"] and threshold(r["expr"]) == 2 for r in rules), (
        "no alert on the p99 of produce -> searchable (rag_freshness_seconds) above 2 s"
    )


# --------------------------------------------------------------------------- Grafana
def test_dashboard_structure() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 36
    assert dash["uid"] and dash["title"]
    panels = dashboard_panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for p in panels:
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]), p.get("title")
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p.get("title")
        if p["type"] != "row":
            assert p.get("targets"), f"panel {p.get('title')!r} has no query"


def test_dashboard_covers_the_metrics() -> None:
    used = set().union(*(metric_names(e) for e in dashboard_exprs()))
    required = {
        "rag_messages_processed_total",
        "rag_chunks_indexed_total",
        "rag_kafka_consumer_lag",
        "rag_drain_time_seconds",
        "rag_pipeline_latency_seconds",
        "rag_vectorstore_query_time_seconds",
        "rag_deadletter_total",
        "rag_stale_writes_dropped_total",
        "rag_cache_hits_total",
        "rag_cache_misses_total",
        "rag_circuit_breaker_state",
        "rag_embed_batch_size",
    }
    assert required <= used, f"dashboard lacks {sorted(required - used)}"


def test_dashboard_datasource_is_provisioned() -> None:
    dash = json.loads(DASHBOARD.read_text())
    provisioned = [
        d
        for f in (DEPLOY / "grafana" / "provisioning").rglob("*.y*ml")
        for doc in load_yaml(f)
        for d in doc.get("datasources", [])
    ]
    uids = {d.get("uid") for d in provisioned if d.get("type") == "prometheus"}
    assert uids, "no Prometheus data source provisioned"
    assert any(d["url"].startswith("http://prometheus:") for d in provisioned)
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    for p in dashboard_panels():
        if p["type"] == "row":
            continue
        uid = p["datasource"]["uid"]
        m = re.fullmatch(r"\$\{?(\w+)\}?", uid)
        if m:
            var = variables[m.group(1)]
            assert var["type"] == "datasource" and var["query"] == "prometheus"
            assert var.get("current", {}).get("value") in uids
        else:
            assert uid in uids, f"panel {p['title']!r} uses unknown data source {uid}"
