"""Time intervals of the prediction log: half-open UTC intervals [start, end).

Every interval query filters `created_at >= start AND created_at < end`, so consecutive days
partition time exactly: a prediction logged at midnight belongs to the day it starts. `DayWindow`
is the one place a day's interval is computed; the Dagster partitions and the CLI build it.
"""

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class DayWindow:
    """One UTC calendar day of the prediction log: [start, end) = [date 00:00, date+1 00:00)."""

    date: dt.date

    def __post_init__(self) -> None:
        if isinstance(self.date, dt.datetime) or not isinstance(self.date, dt.date):
            raise TypeError(f"a DayWindow needs a date, got {self.date!r}")

    @classmethod
    def of(cls, day: "str | dt.date | DayWindow") -> "DayWindow":
        """From a date, a 'YYYY-MM-DD' key (a partition key) or a DayWindow."""
        if isinstance(day, DayWindow):
            return day
        if isinstance(day, dt.datetime):
            raise TypeError(f"expected a date, got the datetime {day.isoformat()}")
        return cls(dt.date.fromisoformat(day) if isinstance(day, str) else day)

    @property
    def key(self) -> str:
        """The ISO date, as Dagster's daily partition keys spell it."""
        return self.date.isoformat()

    @property
    def start(self) -> dt.datetime:
        return dt.datetime(self.date.year, self.date.month, self.date.day, tzinfo=dt.UTC)

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(days=1)


def window_bounds_for_day(day: str | dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC interval of a calendar day (a date or an ISO 'YYYY-MM-DD' partition key)."""
    window = DayWindow.of(day)
    return window.start, window.end


def validate_window(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Both bounds timezone-aware and start < end; returned in UTC."""
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, dt.datetime):
            raise TypeError(f"window {name} must be a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"window {name} {value.isoformat()} is naive: pass an aware (UTC) datetime"
            )
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    if not start < end:
        raise ValueError(
            f"empty or inverted window: start {start.isoformat()} >= end {end.isoformat()}"
        )
    return start, end
