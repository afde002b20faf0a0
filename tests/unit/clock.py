"""The one fake clock of the unit tests: time that moves only when the test says so."""
from __future__ import annotations

from datetime import datetime, timedelta


class Clock:
    """Call it for the time: epoch seconds, or a datetime when started with one (``now``); ``advance`` moves it."""

    def __init__(self, now: float | datetime = 1000.0) -> None:
        self.now = now

    def __call__(self):  # noqa: ANN204 - a float or a datetime, as the clock was started
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds) if isinstance(self.now, datetime) else seconds
