"""A CPU embedder's process does not load Triton (71 MiB of GPU kernels); the model still works."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rag_streams.adapters import model_imports

_WORKER = """
import json, sys
from rag_streams.adapters.embedding import SentenceTransformerEmbedder
vectors = SentenceTransformerEmbedder(device="cpu", batch_size=8).embed(["a chunk of text", "another one"])
maps = open("/proc/self/maps").read()
print(json.dumps({"shape": list(vectors.shape), "triton": sys.modules.get("triton") is not None,
                  "libtriton": "libtriton" in maps}))
"""


def test_a_cpu_embedder_loads_the_model_without_triton() -> None:
    out = subprocess.run([sys.executable, "-c", _WORKER], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"shape": [2, 384], "triton": False, "libtriton": False}


def test_only_the_cpu_device_blocks_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    modules = {k: v for k, v in sys.modules.items() if k != "triton"}
    monkeypatch.setattr(model_imports.sys, "modules", modules)
    assert not model_imports.block_triton_for_cpu("cuda:0") and "triton" not in modules
    assert model_imports.block_triton_for_cpu("cpu") and modules["triton"] is None
    assert model_imports.block_triton_for_cpu("cpu")  # blocked before: still kept out
    modules["triton"] = object()  # loaded before the embedder (e.g. by another library)
    assert not model_imports.block_triton_for_cpu("cpu")
