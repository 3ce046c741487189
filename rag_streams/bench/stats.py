"""Small measuring helpers: percentiles, peak memory, the machine and the versions."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["machine", "memory_mb", "percentiles", "versions"]

PACKAGES = (
    "rag-streams",
    "faust-streaming",
    "aiokafka",
    "sentence-transformers",
    "torch",
    "qdrant-client",
    "numpy",
)


def percentiles(samples: Sequence[float], scale: float = 1.0, unit: str = "s") -> dict[str, float | int]:
    """p50/p95/p99 (nearest rank), mean and max of ``samples`` times ``scale``, keys suffixed by unit."""
    if not samples:
        return {"n": 0}
    ordered = sorted(x * scale for x in samples)

    def rank(q: float) -> float:
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 4)

    return {
        "n": len(ordered),
        f"p50_{unit}": rank(0.50),
        f"p95_{unit}": rank(0.95),
        f"p99_{unit}": rank(0.99),
        f"mean_{unit}": round(sum(ordered) / len(ordered), 4),
        f"max_{unit}": round(ordered[-1], 4),
    }


def memory_mb(pid: int) -> dict[str, float]:
    """A live process's memory from /proc (Linux), in MiB: peak_rss (VmHWM), rss, and rss's
    anonymous and file-backed parts (shared libraries count in rss, and so in its peak)."""
    keys = {"VmHWM:": "peak_rss", "VmRSS:": "rss", "RssAnon:": "rss_anon", "RssFile:": "rss_file"}
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name = line.split(maxsplit=1)[0] if line else ""
            if name in keys:
                out[keys[name]] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str) -> dict[str, Any]:
    import torch

    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        mem_gb = None
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
