"""Small measuring helpers: percentiles, peak memory, the machine and the versions."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["CpuMeter", "machine", "memory_mb", "percentiles", "versions"]

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


def process_cpu_s(pid: int, tid: int | None = None) -> float | None:
    """CPU seconds (user + system) a live process has used, all its threads, or only thread ``tid``
    (the main thread's tid is the pid), from /proc (Linux)."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


def machine_busy_s() -> float | None:
    """CPU seconds all cores spent busy (not idle or waiting for I/O) since boot, from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    ticks = [int(x) for x in first[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


class CpuMeter:
    """Where the CPU time of an interval went: each named process's CPU seconds and the whole
    machine's busy seconds, against what the cores could give (``cores`` x wall time).

    For the processes named in ``split`` also their main thread's share (``<name>_main_thread_s``:
    the worker's event loop) and the rest (``<name>_other_threads_s``: its model and store threads)."""

    def __init__(self, pids: dict[str, int | None], split: tuple[str, ...] = ()) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.split = [name for name in split if name in self.pids]
        self.started = time.perf_counter()
        self.before = {name: process_cpu_s(pid) for name, pid in self.pids.items()}
        self.main_before = {name: process_cpu_s(self.pids[name], self.pids[name]) for name in self.split}
        self.machine_before = machine_busy_s()

    def result(self) -> dict[str, float]:
        wall = time.perf_counter() - self.started
        out: dict[str, float] = {"wall_s": round(wall, 2), "capacity_s": round(wall * (os.cpu_count() or 1), 2)}
        for name, pid in self.pids.items():
            now, then = process_cpu_s(pid), self.before[name]
            if now is not None and then is not None:
                out[f"{name}_s"] = round(now - then, 2)
        for name in self.split:
            pid, then = self.pids[name], self.main_before[name]
            now = process_cpu_s(pid, pid)
            if now is not None and then is not None and f"{name}_s" in out:
                out[f"{name}_main_thread_s"] = round(now - then, 2)
                out[f"{name}_other_threads_s"] = round(out[f"{name}_s"] - (now - then), 2)
        busy = machine_busy_s()
        if busy is not None and self.machine_before is not None:
            out["machine_busy_s"] = round(busy - self.machine_before, 2)
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
