"""Time windows of the prediction log: half-open UTC intervals [start, end).

Every window query filters `created_at >= start AND created_at < end`, so consecutive daily
windows partition time exactly: a prediction logged at midnight belongs to the day it starts.
"""

import datetime as dt


def window_bounds_for_day(day: str | dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC window of a calendar day (a date or an ISO 'YYYY-MM-DD' partition key)."""
    if isinstance(day, dt.datetime):
        raise TypeError(f"expected a date, got the datetime {day.isoformat()}")
    d = dt.date.fromisoformat(day) if isinstance(day, str) else day
    start = dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


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
