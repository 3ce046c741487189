"""Pacing of bulk work (``publish --rate/--window``, ``reindex --rate/--window``): a rate and a daily window.

``Window.parse("01:00-05:00")`` is a daily time-of-day window, start included, end excluded; it may
cross midnight ("22:00-02:00"); equal ends ("00:00-00:00") mean always open. Times are read in the
zone of ``RAG_WINDOW_TIMEZONE`` (``local``, the default: the machine's zone; or an IANA name such as
``UTC``). ``Pacer.acquire(n)`` returns when ``n`` more items may go: first it waits for the window to
be open, then it spaces items ``1/rate`` seconds apart. It only ever sleeps between items, so a pause
loses and repeats nothing: the caller goes on with the next item it had not sent yet.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rag_streams.errors import CliError

__all__ = ["Pacer", "Window", "add_pacing_arguments", "build_pacer", "pacer_of", "parse_rate", "window_zone"]

_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?")
DAY_S = 24 * 3600


def window_zone(name: str) -> tzinfo | None:
    """The zone windows are read in: None for ``local`` (the machine's), else the IANA zone."""
    if name == "local":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"expected 'local' or an IANA time zone name such as UTC, got {name!r}") from exc


def parse_rate(text: str) -> float:
    """``--rate``: a positive, finite number of documents per second."""
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not 0 < rate < math.inf:
        raise CliError(f"--rate: expected documents per second > 0, got {text!r}")
    return rate


@dataclass(frozen=True)
class Window:
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> Window:
        """``HH:MM-HH:MM`` (24-hour clock; ``HH:MM:SS`` also accepted); a bad value is a CliError naming ``--window``."""
        first, sep, second = text.strip().partition("-")
        a, b = _HHMM.fullmatch(first.strip()), _HHMM.fullmatch(second.strip())
        if not sep or a is None or b is None:
            raise CliError(f"--window: expected HH:MM-HH:MM on a 24-hour clock (e.g. 01:00-05:00), got {text!r}")
        return cls(*(time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) for m in (a, b)))

    def __str__(self) -> str:
        return "-".join(f"{t:%H:%M:%S}" if t.second else f"{t:%H:%M}" for t in (self.start, self.end))

    def seconds_until_open(self, now: datetime) -> float:
        """0 when ``now`` is inside the window, else the seconds until it next opens."""
        if self.start == self.end:
            return 0.0
        of_day = now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6
        start, end = (t.hour * 3600 + t.minute * 60 + t.second for t in (self.start, self.end))
        inside = start <= of_day < end if start < end else of_day >= start or of_day < end
        if inside:
            return 0.0
        return (start - of_day) % DAY_S

    def opens_at(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.seconds_until_open(now))


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
WallClock = Callable[[], datetime]
Notify = Callable[[str], None]


class Pacer:
    """At most ``rate`` items per second (None: unpaced), only while ``window`` is open (None: always).

    ``clock`` (monotonic seconds), ``sleep`` and ``wall`` (the date and time, for the window) are
    injectable so that tests run on simulated time. ``notify`` gets one line per pause.
    """

    def __init__(
        self,
        rate: float | None = None,
        window: Window | None = None,
        *,
        zone: tzinfo | None = None,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        wall: WallClock | None = None,
        notify: Notify | None = None,
    ) -> None:
        if rate is not None and not 0 < rate < math.inf:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rate, self.window, self.zone = rate, window, zone
        self._clock = clock or _monotonic
        self._sleep = sleep
        self._wall = wall or (lambda: datetime.now(zone).astimezone(zone))
        self._notify = notify
        self._next: float | None = None  # when the next item may go (monotonic seconds)
        self.paused_s = 0.0  # total seconds spent waiting for the window

    @property
    def active(self) -> bool:
        return self.rate is not None or self.window is not None

    async def wait_for_window(self) -> None:
        """Return at once inside the window, else sleep until it opens (re-checked after each sleep)."""
        if self.window is None:
            return
        announced = False
        while (wait := self.window.seconds_until_open(self._wall())) > 0:
            if not announced and self._notify is not None:
                opens = self.window.opens_at(self._wall())
                self._notify(f"outside the window {self.window}: paused until {opens:%Y-%m-%d %H:%M} ({wait:.0f} s)")
                announced = True
            # wake at least hourly: a clock change (DST, NTP step) is seen within the hour
            await self._sleep(min(wait, 3600.0))
            self.paused_s += min(wait, 3600.0)
            self._next = None  # no burst to catch up after a pause
        if announced and self._notify is not None:
            self._notify(f"window {self.window} open: resuming")

    async def acquire(self, n: int = 1) -> None:
        """Wait until ``n`` more items may go (the window is open, and the rate allows them)."""
        while True:
            await self.wait_for_window()
            if self.rate is None or n <= 0:
                return
            now = self._clock()
            start = now if self._next is None else max(now, self._next)
            if start > now:
                await self._sleep(start - now)
            if self.window is None or self.window.seconds_until_open(self._wall()) == 0:
                self._next = start + n / self.rate
                return
            # the window closed while the rate held these back: wait for it again


def _monotonic() -> float:
    return asyncio.get_running_loop().time()


def build_pacer(zone_name: str, rate: str | None, window: str | None, notify: Notify | None = None) -> Pacer:
    """The Pacer of ``--rate`` / ``--window`` as given on the command line (bad values: CliError)."""
    return Pacer(
        None if rate is None else parse_rate(rate),
        None if window is None else Window.parse(window),
        zone=window_zone(zone_name),
        notify=notify,
    )


def add_pacing_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--rate`` and ``--window`` (strings: ``pacer_of`` checks them, a bad one is one line, exit 2)."""
    parser.add_argument("--rate", default=None, metavar="DOCS_PER_S", help=f"at most this many {what} a second")
    parser.add_argument(
        "--window",
        default=None,
        metavar="HH:MM-HH:MM",
        help="work only inside this daily window (RAG_WINDOW_TIMEZONE; may cross midnight), paused outside it",
    )


def pacer_of(args: argparse.Namespace, zone_name: str) -> Pacer:
    return build_pacer(zone_name, args.rate, args.window, lambda line: print(line, file=sys.stderr, flush=True))
