"""The bench's CPU accounting: where the cores' time went during the first ingest (issue: measure
where the remaining time goes). Read from /proc, so it is exercised on this very process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from rag_streams.bench.stats import CpuMeter, process_cpu_s


def burn(cpu_seconds: float) -> None:
    until = time.process_time() + cpu_seconds
    while time.process_time() < until:
        pass


def test_the_meter_counts_a_process_cpu_and_the_machine_busy_time_around_it() -> None:
    meter = CpuMeter({"me": os.getpid()})
    burn(0.3)
    used = meter.result()
    assert 0.25 <= used["me_s"] <= used["capacity_s"]  # clock ticks are 10 ms
    assert used["machine_busy_s"] >= used["me_s"] - 0.05  # the machine was at least as busy as this process
    assert used["capacity_s"] >= used["wall_s"]


def test_a_process_that_is_gone_is_left_out() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_cpu_s(child.pid) is None
    meter = CpuMeter({"gone": child.pid, "absent": None})
    assert "gone_s" not in meter.result() and "absent_s" not in meter.result()
