"""Settings: every RAG_* variable has a safe default, a doc, and a bad value fails naming it."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from rag_streams.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = [ROOT / "rag_streams", ROOT / "agents", ROOT / "tables"]
HF_OFFLINE_FLAGS = {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM"}


def test_defaults_load_from_an_empty_environment() -> None:
    s = load_settings({}, dotenv=None)
    assert s.kafka_bootstrap == "localhost:9092"
    assert s.topic_prefix == "rag"
    assert s.processing_guarantee == "exactly_once"
    assert s.qdrant_url is None
    assert s.embed_batch == 8
    assert s.commit_interval_s == 0.1  # Kafka Streams' exactly-once default (Faust's own 2.8 made freshness 5-8 s)
    assert s.embed_window_s == 0.02
    assert s.chunk_overlap < s.chunk_tokens
    assert s.retag_unchanged is True
    assert s.log_format == "console"
    assert s.api_key_tenants() == {}


def test_values_are_converted_to_field_types() -> None:
    s = load_settings(
        {
            "RAG_EMBED_BATCH": " 16 ",
            "RAG_UPSERT_RATE": "12.5",
            "RAG_QDRANT_PATH": "/tmp/q",
            "RAG_PROCESSING_GUARANTEE": "at_least_once",
        },
        dotenv=None,
    )
    assert s.embed_batch == 16
    assert s.upsert_rate == 12.5
    assert s.qdrant_path == Path("/tmp/q")
    assert s.qdrant_location == Path("/tmp/q")
    assert s.processing_guarantee == "at_least_once"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"RAG_EMBED_BATCH": "many"}, "RAG_EMBED_BATCH"),
        ({"RAG_EMBED_BATCH": "0"}, "RAG_EMBED_BATCH"),
        ({"RAG_COMMIT_INTERVAL_S": "0"}, "RAG_COMMIT_INTERVAL_S"),
        ({"RAG_COMMIT_INTERVAL_S": "soon"}, "RAG_COMMIT_INTERVAL_S"),
        ({"RAG_PROCESSING_GUARANTEE": "maybe"}, "RAG_PROCESSING_GUARANTEE"),
        ({"RAG_CHUNK_TOKENS": "100", "RAG_CHUNK_OVERLAP": "100"}, "RAG_CHUNK_OVERLAP"),
        ({"RAG_CHUNK_TOKENS": "100", "RAG_CHUNK_OVERLAP": "150"}, "RAG_CHUNK_OVERLAP"),
        ({"RAG_KAFKA_BOOTSTRAP": "localhost"}, "RAG_KAFKA_BOOTSTRAP"),
        ({"RAG_KAFKA_BOOTSTRAP": "localhost:9092,broker2:abc"}, "RAG_KAFKA_BOOTSTRAP"),
        ({"RAG_QDRANT_URL": "localhost:6333"}, "RAG_QDRANT_URL"),
        ({"RAG_LOG_FORMAT": "xml"}, "RAG_LOG_FORMAT"),
        ({"RAG_WEB_PORT": "70000"}, "RAG_WEB_PORT"),
        ({"RAG_UPSERT_RATE": "fast"}, "RAG_UPSERT_RATE"),
        ({"RAG_SESSION_TIMEOUT_S": "2"}, "RAG_SESSION_TIMEOUT_S"),
        ({"RAG_REINDEX_UPSERT_RATE": "0"}, "RAG_REINDEX_UPSERT_RATE"),
        ({"RAG_REINDEX_GRACE_S": "-1"}, "RAG_REINDEX_GRACE_S"),
        ({"RAG_SESSION_TIMEOUT_S": "3600"}, "RAG_SESSION_TIMEOUT_S"),
        ({"RAG_LAG_INTERVAL_S": "-1"}, "RAG_LAG_INTERVAL_S"),
        ({"RAG_LAG_INTERVAL_S": "nan"}, "RAG_LAG_INTERVAL_S"),
        ({"RAG_GROUP_INSTANCE_ID": "pod 0"}, "RAG_GROUP_INSTANCE_ID"),
        ({"RAG_GROUP_INSTANCE_ID": "a/b"}, "RAG_GROUP_INSTANCE_ID"),
        ({"RAG_EDGE_INDEX_THRESHOLD": "0"}, "RAG_EDGE_INDEX_THRESHOLD"),
        ({"RAG_QUANTIZATION": "int4"}, "RAG_QUANTIZATION"),
        ({"RAG_RETAG_UNCHANGED": "sometimes"}, "RAG_RETAG_UNCHANGED"),
        ({"RAG_BULK_MIN_CHUNKS": "-1"}, "RAG_BULK_MIN_CHUNKS"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env, dotenv=None)
    assert str(info.value).startswith(f"{variable}:")


def test_dotenv_is_read_and_the_real_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("# local overrides\nRAG_TOPIC_PREFIX=fromfile\nexport RAG_EMBED_BATCH='7'\nRAG_CACHE_TTL=11\n")
    s = load_settings({"RAG_EMBED_BATCH": "9"}, dotenv=dotenv)
    assert s.topic_prefix == "fromfile"
    assert s.cache_ttl == 11
    assert s.embed_batch == 9


def test_a_missing_dotenv_file_is_fine(tmp_path: Path) -> None:
    assert load_settings({}, dotenv=tmp_path / "absent.env") == load_settings({}, dotenv=None)


def test_settings_are_frozen() -> None:
    s = load_settings({}, dotenv=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.embed_batch = 1  # type: ignore[misc]
    assert s.replace(embed_batch=1).embed_batch == 1
    assert s.embed_batch == 8


def test_replace_validates_too() -> None:
    with pytest.raises(SettingsError, match=r"^RAG_WEB_PORT:"):
        load_settings({}, dotenv=None).replace(web_port=0)


def test_api_key_tenants_parses_key_tenant_pairs() -> None:
    s = load_settings({"RAG_API_KEYS": "k1:acme, k2:beta"}, dotenv=None)
    assert s.api_key_tenants() == {"k1": "acme", "k2": "beta"}


def test_api_keys_file_adds_to_the_variable(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# comment\nk3:gamma\n\n")
    s = load_settings({"RAG_API_KEYS": "k1:acme", "RAG_API_KEYS_FILE": str(keys)}, dotenv=None)
    assert s.api_key_tenants() == {"k1": "acme", "k3": "gamma"}


@pytest.mark.parametrize("value", ["k1", "k:BAD TENANT", ":acme", "k1:"])
def test_api_key_tenants_rejects_malformed_entries(value: str) -> None:
    s = load_settings({"RAG_API_KEYS": value}, dotenv=None)
    with pytest.raises(SettingsError, match=r"^RAG_API_KEYS:"):
        s.api_key_tenants()


def test_every_field_has_a_rag_variable_and_a_doc() -> None:
    names = []
    for f in dataclasses.fields(Settings):
        assert f.metadata["env"].startswith("RAG_"), f.name
        assert f.metadata["doc"].strip(), f.name
        names.append(f.metadata["env"])
    assert len(names) == len(set(names))
    assert {v for v, _, _ in Settings.describe()} == set(names)


def _environ_uses(path: Path) -> list[tuple[str, str | None]]:
    """(kind, first argument) of every os.environ / os.getenv use in a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    uses: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"):
            continue
        if node.attr == "getenv":
            uses.append(("getenv", None))
        elif node.attr == "environ":
            parent = parents[node]
            if isinstance(parent, ast.Subscript):
                uses.append(("subscript", None))
            elif isinstance(parent, ast.Attribute):
                call = parents.get(parent)
                arg = None
                if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant):
                    arg = call.args[0].value
                uses.append((parent.attr, arg))
            else:
                uses.append(("other", None))
    return uses


def test_only_settings_reads_the_environment() -> None:
    modules = sorted(p for d in PACKAGE_DIRS for p in d.rglob("*.py") if p != ROOT / "rag_streams" / "settings.py")
    assert modules
    setdefaults: set[tuple[str, str | None]] = set()
    for path in modules:
        text = path.read_text()
        assert "os.environ[" not in text, path.name
        assert "os.getenv" not in text, path.name
        for kind, arg in _environ_uses(path):
            assert kind in ("setdefault", "copy"), f"{path.name}: os.environ {kind}"
            if kind == "setdefault":
                setdefaults.add((path.name, arg))
    # cli.main() turns progress bars off for non-TTY logs before tqdm / huggingface_hub are imported
    progress_bars = {("cli.py", "TQDM_DISABLE"), ("cli.py", "HF_HUB_DISABLE_PROGRESS_BARS")}
    assert setdefaults == {("embedding.py", flag) for flag in HF_OFFLINE_FLAGS} | progress_bars
