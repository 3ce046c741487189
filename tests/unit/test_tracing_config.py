"""Tracing's configuration: the standard OTEL_* variables turn it on (and only those it can
honour); the compose stack sends its traces to the Jaeger it runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from rag_streams.observability import tracing
from rag_streams.settings import SettingsError

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.kafka.yml"


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://localhost:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, ["console", "otlp"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, []),
    ],
)
def test_the_otel_variables_turn_it_on(env: dict[str, str], wanted: list[str]) -> None:
    assert tracing.exporters(env) == wanted


@pytest.mark.parametrize(
    "env",
    [{"OTEL_TRACES_EXPORTER": "zipkin"}, {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}],
)
def test_an_exporter_that_is_not_installed_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="OTEL_"):
        tracing.exporters(env)


def test_the_compose_stack_traces_to_its_jaeger() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert services["jaeger"]["image"].startswith("jaegertracing/jaeger:")
    assert {"16686:16686", "4318:4318"} <= set(services["jaeger"]["ports"])
    for name in ("worker", "api", "worker-chunk", "worker-embed", "worker-index"):
        # compose's ${VAR:-default} as compose resolves it when the variable is unset
        env = {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in services[name]["environment"].items()}
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", name
        assert tracing.exporters(env) == ["otlp"], name
