"""systemd calendar expressions (`OnCalendar=`, systemd.time(7)), checked without systemd: the
controller (a laptop, a CI container) may not have it. tests/unit/test_calendar.py holds this
checker to `systemd-analyze calendar` on a corpus of good and bad expressions."""

from __future__ import annotations

import re
import zoneinfo

SHORTHANDS = {"minutely", "hourly", "daily", "monthly", "weekly", "yearly", "annually", "quarterly",
              "semiannually"}  # fmt: skip
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAY_NAMES = {d: i for i, d in enumerate(DAYS)} | {
    n: i for i, n in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])
}
_NUMBER = r"[0-9]+"
_ITEM = re.compile(rf"^(\*|{_NUMBER})(\.\.({_NUMBER}))?(/({_NUMBER}))?$")
_SECONDS_ITEM = re.compile(r"^(\*|[0-9]+(\.[0-9]+)?)(\.\.([0-9]+(\.[0-9]+)?))?(/([0-9]+(\.[0-9]+)?))?$")


def calendar_problem(expr: str) -> str | None:
    """Why `expr` is not a calendar expression systemd accepts; None when it is."""
    words = expr.strip().split()
    if not words:
        return "empty"
    if len(words) > 1 and (words[-1] == "UTC" or ("/" in words[-1] and _zone(words[-1]))):
        words = words[:-1]
    if len(words) == 1 and words[0].lower() in SHORTHANDS:
        return None
    if words and re.match(r"^[A-Za-z]", words[0]):
        problem = _weekdays(words.pop(0))
        if problem:
            return problem
    if not words:
        return None  # weekdays alone: "Mon,Fri" means those days at 00:00
    if len(words) > 2:
        return "too many parts (weekdays, date, time, timezone)"
    date, time = (words[0], words[1]) if len(words) == 2 else (None, words[0])
    if time is not None and ":" not in time:
        date, time = time, None
    if date is not None:
        problem = _date(date)
        if problem:
            return problem
    return _time(time) if time is not None else None


def _zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _weekdays(text: str) -> str | None:
    for item in text.split(","):
        ends = item.split("..")
        if len(ends) > 2 or any(e.lower() not in DAY_NAMES for e in ends):
            return f"{item!r} is not a weekday or a range of weekdays (Mon..Fri)"
    return None


def _date(text: str) -> str | None:
    if "~" in text:  # "*-02~03": the third last day of February
        head, _, tail = text.rpartition("-")
        month, _, day = tail.partition("~")
        parts = [head or "*", month, day]
    else:
        parts = text.split("-")
        if len(parts) == 2:
            parts = ["*", *parts]
    if len(parts) != 3:
        return f"{text!r} is not a date (YYYY-MM-DD, MM-DD, with *, lists, ranges)"
    year, month, day = parts
    for value, low, high, what in ((year, 1970, 2199, "year"), (month, 1, 12, "month"), (day, 1, 31, "day")):
        problem = _items(value, low, high, what)
        if problem:
            return problem
    return None


def _time(text: str) -> str | None:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        return f"{text!r} is not a time (HH:MM or HH:MM:SS)"
    hour, minute = parts[0], parts[1]
    for value, high, what in ((hour, 23, "hour"), (minute, 59, "minute")):
        problem = _items(value, 0, high, what)
        if problem:
            return problem
    if len(parts) == 3:
        for item in parts[2].split(","):
            found = _SECONDS_ITEM.match(item)
            if not found or any(float(v) >= 60 for v in (found.group(1), found.group(4)) if v and v != "*"):
                return f"{item!r} is not a second (0-59, may have a fraction)"
    return None


def _items(text: str, low: int, high: int, what: str) -> str | None:
    for item in text.split(","):
        found = _ITEM.match(item)
        if not found:
            return f"{item!r} is not a {what} (a number, *, a..b or a/step)"
        start, end, step = found.group(1), found.group(3), found.group(5)
        numbers = [int(v) for v in (start, end) if v and v != "*"]
        if any(not low <= n <= high for n in numbers):
            return f"{item!r} is out of range for a {what} ({low}-{high})"
        if step is not None and int(step) == 0:
            return f"{item!r}: a step of 0 repeats nothing"
    return None
