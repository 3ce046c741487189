"""The bench's measuring helpers: where the cores' time went during the first ingest (read from
/proc, so exercised on this very process), and the /metrics sums its polls read."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

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


def burn_in_thread(cpu_seconds: float) -> None:
    def run() -> None:
        until = time.thread_time() + cpu_seconds
        while time.thread_time() < until:
            pass

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def test_a_split_process_has_its_main_thread_apart_from_its_other_threads() -> None:
    meter = CpuMeter({"me": os.getpid()}, split=("me", "absent"))
    burn(0.3)  # on the main thread, like the worker's event loop
    burn_in_thread(0.5)  # like the model's thread
    used = meter.result()
    assert 0.25 <= used["me_main_thread_s"] <= 0.45
    assert 0.45 <= used["me_other_threads_s"] <= 0.65
    assert used["me_main_thread_s"] + used["me_other_threads_s"] == pytest.approx(used["me_s"], abs=0.011)
    assert not any(key.startswith("absent") for key in used)


def test_a_process_that_is_gone_is_left_out() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_cpu_s(child.pid) is None
    meter = CpuMeter({"gone": child.pid, "absent": None})
    assert "gone_s" not in meter.result() and "absent_s" not in meter.result()


def test_metric_sum_adds_the_samples_whose_labels_match() -> None:
    from rag_streams.bench.stack import metric_sum

    text = "\n".join(
        [
            "# HELP rag_messages_processed_total events",
            'rag_messages_processed_total{stage="index"} 7.0',
            'rag_messages_processed_total{stage="embed"} 5.0',
            'rag_messages_processed_total_created{stage="index"} 1.7e9',
            'rag_retagged_total{stage="index",tenant="a"} 2.0',
            'rag_retagged_total{stage="index",tenant="b"} 3.0',
        ]
    )
    assert metric_sum(text, "rag_messages_processed_total", stage="index") == 7.0
    assert metric_sum(text, "rag_messages_processed_total") == 12.0
    assert metric_sum(text, "rag_retagged_total", stage="index") == 5.0
    assert metric_sum(text, "rag_missing_total") == 0.0
