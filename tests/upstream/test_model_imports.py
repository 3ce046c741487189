"""The model's imports load Triton (rag_streams/adapters/model_imports.py works around it).

Runs transformers' own import in a fresh interpreter: nothing of rag_streams is imported there."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import importlib.util, json, sys
installed = importlib.util.find_spec("triton") is not None
import transformers.modeling_utils  # what sentence-transformers imports to load any model
print(json.dumps({"installed": installed, "loaded": sys.modules.get("triton") is not None}))
"""


def test_transformers_model_code_imports_triton_when_it_is_installed() -> None:
    """(In a fresh interpreter: this one may have blocked Triton already.)"""
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    installed, loaded = seen["installed"], seen["loaded"]
    assert loaded == installed, (
        "transformers' model code no longer imports Triton: remove rag_streams/adapters/model_imports.py"
        if installed
        else "Triton is not installed, yet something imported it"
    )
