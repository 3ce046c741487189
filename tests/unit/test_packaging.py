"""The wheel installs only `rag_streams`: the repository's agents/ and tables/ never shadow other packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["setup.cfg", "pyproject.toml", "README.md", "rag_streams", "agents", "tables", "schemas"]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".rag-data")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build from a copy of the sources, so the build leaves nothing in the checkout."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=IGNORE)
        elif path.is_file():
            shutil.copy2(path, src / name)
    dist = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(dist),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = dist.glob("rag_streams-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_files(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_only_rag_streams_is_top_level(wheel_files: list[str]) -> None:
    top = {name.split("/")[0] for name in wheel_files if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"rag_streams"}


def test_top_level_txt_names_only_rag_streams(wheel: Path, wheel_files: list[str]) -> None:
    (top_level,) = [n for n in wheel_files if n.endswith(".dist-info/top_level.txt")]
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read(top_level).decode().split() == ["rag_streams"]


@pytest.mark.parametrize(
    "path",
    [
        "rag_streams/agents/chunk_documents.py",
        "rag_streams/agents/embed_chunks.py",
        "rag_streams/agents/index_embeddings.py",
        "rag_streams/tables/versions.py",
        "rag_streams/schemas/avro/RawDocument.avsc",
        "rag_streams/schemas/avro/Chunk.avsc",
        "rag_streams/schemas/avro/EmbeddingUpsert.avsc",
        "rag_streams/schemas/avro/DeadLetter.avsc",
        "rag_streams/adapters/codecs.py",
    ],
)
def test_wheel_contains(path: str, wheel_files: list[str]) -> None:
    assert path in wheel_files


def test_installed_wheel_lives_beside_other_agents_and_tables(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (target / "agents").exists()
    assert not (target / "tables").exists()
    for name in ("agents", "tables"):
        (target / name).mkdir()
        (target / name / "__init__.py").write_text(f"MARKER = 'third-party {name}'\n")
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import agents, tables
        assert agents.MARKER == "third-party agents", agents.__file__
        assert tables.MARKER == "third-party tables", tables.__file__
        import rag_streams
        from rag_streams.rules import chunking
        from rag_streams.adapters import codecs
        from rag_streams.rules.records import RawDocument
        target = Path({str(target)!r}).resolve()
        for mod in (rag_streams, chunking, codecs):
            assert Path(mod.__file__).resolve().is_relative_to(target), mod.__file__
        assert "agents" in sys.modules and sys.modules["agents"] is agents
        doc = RawDocument(tenant_id="acme", doc_id="a", version=1, text="one two three")
        assert codecs.RAW.decode(codecs.RAW.encode(doc)) == doc
        chunks = chunking.chunk_document(doc, chunking.WhitespaceTokenizer(), size=2, overlap=1)
        assert [c.text for c in chunks] == ["one two", "two three"], chunks
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RAG_"))}
    env["PYTHONPATH"] = str(target)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"
