"""An upstream work-around for the model's imports: a CPU embedder does not load Triton.

transformers 5.17.0 decorates a function in ``transformers/integrations/deepgemm.py`` with
``torch._dynamo.assume_constant_result`` when the module is imported, and
``transformers.modeling_utils`` (which sentence-transformers imports to load any model) imports it.
Importing ``torch._dynamo`` asks ``torch.utils._triton.has_triton_package()``, which imports
``triton`` when it is installed, and it is wherever torch's CUDA wheels are (PyPI's Linux torch).
Triton's native library then sits in every process that loads the model: 71 MiB of resident memory
in the worker on this machine (2026-12-01, torch 2.15.0, triton 3.9.0), for GPU kernels a CPU
embedder never runs, against a worker budget of 1.2 GB (SPEC §9). Not reported upstream.

:func:`block_triton_for_cpu` makes ``import triton`` fail (``sys.modules["triton"] = None``, the
documented way to make an import raise ImportError) before sentence-transformers is imported, on
the CPU device only, and only when nothing has imported Triton yet; torch then takes its
"Triton not installed" path. A CUDA device keeps Triton. The test that pins the upstream behaviour
is tests/upstream/test_model_imports.py; it fails once importing transformers' model code no
longer loads Triton, and this module can go.
"""

from __future__ import annotations

import sys

__all__ = ["PINNED_BY", "VERIFIED", "block_triton_for_cpu"]

#: The versions the work-around was verified on (constraints.txt pins the same).
VERIFIED = {"transformers": "5.17.0", "torch": "2.15.0", "triton": "3.9.0"}
#: The test showing the upstream behaviour (fails once transformers no longer loads Triton).
PINNED_BY = "tests/upstream/test_model_imports.py::test_transformers_model_code_imports_triton_when_it_is_installed"


def block_triton_for_cpu(device: str) -> bool:
    """Keep Triton out of this process when the model runs on the CPU; whether it is kept out."""
    if not device.startswith("cpu"):
        return False
    if "triton" in sys.modules:  # loaded already (blocking now saves nothing), or blocked before
        return sys.modules["triton"] is None
    sys.modules["triton"] = None  # type: ignore[assignment]
    return True
