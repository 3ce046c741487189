"""Pacing rules on simulated time: the rate, the window (crossing midnight), pause and resume."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, time, timedelta

import pytest

from rag_streams.commands.pacing import Pacer, Window, build_pacer, parse_rate
from rag_streams.errors import CliError
from rag_streams.settings import SettingsError, load_settings


class SimTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self, start: datetime) -> None:
        self.start, self.t = start, 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.t += seconds


def pacer(sim: SimTime, rate: float | None, window: str | None = None, notes: list[str] | None = None) -> Pacer:
    return Pacer(
        rate,
        Window.parse(window) if window else None,
        clock=sim.clock,
        sleep=sim.sleep,
        wall=sim.wall,
        notify=None if notes is None else notes.append,
    )


AT = datetime(2025, 3, 4, 12, 0, 0)


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return AT.replace(hour=hh, minute=mm, second=ss)


# --- Window ------------------------------------------------------------------
def test_window_parse_and_str() -> None:
    w = Window.parse("01:00-05:30")
    assert (w.start, w.end) == (time(1, 0), time(5, 30))
    assert str(w) == "01:00-05:30"
    assert str(Window.parse(" 7:05 - 9:00 ")) == "07:05-09:00"
    assert str(Window.parse("01:00:30-05:00")) == "01:00:30-05:00"
    assert Window.parse("01:00:30-05:00").seconds_until_open(at(1, 0, 10)) == 20


@pytest.mark.parametrize("bad", ["25:00-01:00", "01:00", "1-5", "01:60-02:00", "01:00-24:00", "", "a-b", "01:00-"])
def test_window_parse_refuses_bad_values(bad: str) -> None:
    with pytest.raises(CliError, match="--window"):
        Window.parse(bad)


def test_seconds_until_open_same_day_window() -> None:
    w = Window.parse("01:00-05:00")
    assert w.seconds_until_open(at(1, 0)) == 0  # start included
    assert w.seconds_until_open(at(4, 59, 59)) == 0
    assert w.seconds_until_open(at(5, 0)) == 20 * 3600  # end excluded: tomorrow 01:00
    assert w.seconds_until_open(at(0, 30)) == 30 * 60
    assert w.seconds_until_open(at(12, 0)) == 13 * 3600


def test_seconds_until_open_window_crossing_midnight() -> None:
    w = Window.parse("22:00-02:00")
    assert w.seconds_until_open(at(23, 0)) == 0
    assert w.seconds_until_open(at(0, 0)) == 0
    assert w.seconds_until_open(at(1, 59)) == 0
    assert w.seconds_until_open(at(2, 0)) == 20 * 3600
    assert w.seconds_until_open(at(21, 0)) == 3600
    assert Window.parse("00:00-00:00").seconds_until_open(at(13, 7)) == 0  # equal ends: always open


# --- rate ------------------------------------------------------------------------
def test_parse_rate() -> None:
    assert parse_rate("200") == 200.0
    assert parse_rate("0.5") == 0.5
    for bad in ("0", "-3", "nan", "inf", "fast", ""):
        with pytest.raises(CliError, match="--rate"):
            parse_rate(bad)


async def test_rate_is_respected_over_simulated_time() -> None:
    sim = SimTime(AT)
    p = pacer(sim, rate=5)
    sent: list[float] = []
    for _ in range(50):
        await p.acquire()
        sent.append(sim.t)
    assert sent[0] == 0  # the first goes at once
    assert sent[-1] == pytest.approx(49 / 5)  # 50 items at 5/s: 9.8 s, not faster and not slower
    eps = 1e-6  # float sums of 0.2
    for start in range(0, 10):  # every 1-second span holds at most 5 sends
        assert sum(start - eps <= t < start + 1 - eps for t in sent) <= 5


async def test_rate_counts_batches_by_size() -> None:
    sim = SimTime(AT)
    p = pacer(sim, rate=10)
    for _ in range(5):
        await p.acquire(20)  # 20 items per batch at 10/s: a batch every 2 s
    assert sim.t == pytest.approx(8.0)


async def test_no_burst_after_idle_time() -> None:
    sim = SimTime(AT)
    p = pacer(sim, rate=2)
    await p.acquire()
    sim.t += 100  # the caller was busy: the rate does not bank 200 items
    await p.acquire()
    start = sim.t
    await p.acquire()
    assert sim.t - start == pytest.approx(0.5)


# --- window pauses ------------------------------------------------------------
async def test_waits_until_the_window_opens_then_resumes() -> None:
    sim = SimTime(at(23, 0))
    notes: list[str] = []
    p = pacer(sim, rate=None, window="01:00-05:00", notes=notes)
    await p.acquire()
    assert sim.wall() == at(1, 0) + timedelta(days=1)  # 2 h later, in hourly sleeps
    assert sim.sleeps == [3600, 3600]
    assert notes[0].startswith("outside the window 01:00-05:00: paused until 2025-03-05 01:00")
    assert notes[-1] == "window 01:00-05:00 open: resuming"
    assert p.paused_s == 7200


async def test_pause_in_the_middle_loses_and_repeats_nothing() -> None:
    """A window closes during a paced run: every item still goes exactly once, none outside the window."""
    sim = SimTime(at(4, 59, 50))
    p = pacer(sim, rate=1, window="01:00-05:00")
    items, sent = list(range(30)), []
    for item in items:
        await p.acquire()
        sent.append((item, sim.wall()))
    assert [i for i, _ in sent] == items  # in order, none lost, none twice
    w = Window.parse("01:00-05:00")
    assert all(w.seconds_until_open(when) == 0 for _, when in sent)
    assert sent[9][1] == at(4, 59, 59) and sent[10][1] == at(1, 0) + timedelta(days=1)
    assert sent[-1][1] == at(1, 0, 19) + timedelta(days=1)  # the rate again from the window's start


async def test_window_and_no_rate_inside_the_window_never_sleeps() -> None:
    sim = SimTime(at(2, 0))
    p = pacer(sim, rate=None, window="01:00-05:00")
    for _ in range(100):
        await p.acquire()
    assert sim.sleeps == []


def test_build_pacer() -> None:
    p = build_pacer("UTC", "200", "01:00-05:00")
    assert p.rate == 200 and str(p.window) == "01:00-05:00" and p.active
    assert not build_pacer("local", None, None).active


def test_window_timezone_setting() -> None:
    assert load_settings({}, dotenv=None).window_timezone == "local"
    assert load_settings({"RAG_WINDOW_TIMEZONE": "UTC"}, dotenv=None).window_timezone == "UTC"
    with pytest.raises(SettingsError, match="RAG_WINDOW_TIMEZONE"):
        load_settings({"RAG_WINDOW_TIMEZONE": "Mars/Olympus"}, dotenv=None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["publish", "--tenant", "acme", "--rate", "0", "x"], "rag-streams: error: --rate: expected"),
        (["publish", "--tenant", "acme", "--window", "25:00-01:00", "x"], "rag-streams: error: --window: expected"),
        (["reindex", "--tenant", "acme", "--rate", "-1"], "rag-streams: error: --rate: expected"),
        (["reindex", "--tenant", "acme", "--window", "1am-5am"], "rag-streams: error: --window: expected"),
    ],
)
def test_cli_refuses_bad_pacing_in_one_line(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rag_streams.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
