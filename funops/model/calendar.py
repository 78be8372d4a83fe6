"""systemd calendar expressions (`OnCalendar=`, systemd.time(7)), checked without systemd: the
controller (a laptop, a CI container) may not have it. tests/unit/test_calendar.py holds this
checker to `systemd-analyze calendar` on a corpus of good and bad expressions.

The rules below are systemd's (v252, found by probing `systemd-analyze calendar`): a field is `*` or a
list of `start[..stop][/repeat]` (`*` takes neither a stop nor a repeat), a stop is not before its
start, a repeat is more than 0 and, without a stop, start+repeat stays in the field's range; a day
counted from the month's end (`~`) is at most 28; a year of two digits is 20xx (00-69) or 19xx (70-99)."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass

SHORTHANDS = {"minutely", "hourly", "daily", "monthly", "weekly", "yearly", "annually", "quarterly",
              "semiannually"}  # fmt: skip
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAY_NAMES = {d: i for i, d in enumerate(DAYS)} | {
    n: i for i, n in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])
}
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_ITEM = re.compile(rf"(\*|{_NUMBER})(?:\.\.({_NUMBER}))?(?:/({_NUMBER}))?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class _Field:
    """One field of a calendar expression (weekday, year, month ...): its bounds and how to check it."""

    what: str
    low: int
    high: float  # seconds may be fractional: up to 59.999999
    fraction: bool = False
    from_end: bool = False  # `~`: a repetition counts towards the month's start

    def problem(self, text: str, year: bool = False) -> str | None:
        for item in text.split(","):
            found = _ITEM.fullmatch(item)
            if not found:
                return f"{item!r} is not a {self.what} (a number, *, a..b or a/step)"
            start, stop, repeat = found.groups()
            if start == "*":
                if stop is not None or repeat is not None:
                    return f"{item!r}: * takes no range or step (write 0/5, not */5)"
                continue
            values = [v for v in (start, stop, repeat) if v is not None]
            if not self.fraction and any("." in v for v in values):
                return f"{item!r} is not a {self.what}: whole numbers only"
            first, last = (_year(float(v)) if year else float(v) for v in (start, stop or start))
            if not (self.low <= first <= self.high and self.low <= last <= self.high):
                return f"{item!r} is out of range for a {self.what} ({self.low}-{self.high:g})"
            if last < first:
                return f"{item!r}: the range ends before it starts"
            if repeat is not None and not self._repeats(first, float(repeat), stop is not None):
                return f"{item!r}: a step must be more than 0 and, with no end, stay in range"
        return None

    def _repeats(self, first: float, step: float, bounded: bool) -> bool:
        """systemd refuses a step of 0, and an open repetition (`a/step`) whose second value falls
        outside the field's range."""
        if step <= 0 or bounded:
            return step > 0
        return first - step >= self.low if self.from_end else first + step <= self.high


YEAR, MONTH, DAY = _Field("year", 1970, 2199), _Field("month", 1, 12), _Field("day", 1, 31)
DAY_FROM_END = _Field("day counted from the month's end", 1, 28, from_end=True)
HOUR, MINUTE = _Field("hour", 0, 23), _Field("minute", 0, 59)
SECOND = _Field("second", 0, 59.999999, fraction=True)


def calendar_problem(expr: str) -> str | None:
    """Why `expr` is not a calendar expression systemd accepts; None when it is."""
    if _CONTROL.search(expr):
        return "a control character or line break"  # it goes on one line of a unit file
    if expr != expr.strip():
        return "leading or trailing blanks"
    words = expr.split()
    if not words:
        return "empty"
    if len(words) > 1 and _zone(words[-1]):
        words = words[:-1]
    if len(words) == 1 and (words[0].lower() in SHORTHANDS or re.fullmatch(r"@[0-9]+", words[0])):
        return None
    if re.match(r"[A-Za-z]", words[0]):
        problem = _weekdays(words.pop(0))
        if problem:
            return problem
        if not words:
            return None  # weekdays alone: "Mon,Fri" means those days at 00:00
    if len(words) > 2:
        return "too many parts (weekdays, date, time, timezone)"
    date, time = (words[0], words[1]) if len(words) == 2 else (None, words[0])
    if time is not None and ":" not in time and date is None:
        date, time = time, None
    return (date is not None and _date(date)) or (time is not None and _time(time)) or None


def _zone(name: str) -> bool:
    if name.lower() == "utc":
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _weekdays(text: str) -> str | None:
    if text.endswith(",") and not text.endswith(",,"):
        text = text[:-1]  # systemd takes "Mon,Tue," (one trailing comma, only here)
    for item in text.split(","):
        ends = item.split("..") if ".." in item else item.split("-")
        if len(ends) > 2 or any(e.lower() not in DAY_NAMES for e in ends):
            return f"{item!r} is not a weekday or a range of weekdays (Mon..Fri)"
        if DAY_NAMES[ends[-1].lower()] < DAY_NAMES[ends[0].lower()]:
            return f"{item!r}: a range of weekdays runs forward (Mon..Fri, not Fri..Mon)"
    return None


def _date(text: str) -> str | None:
    day_field = DAY
    if "~" in text:  # "*-02~03": the third last day of February
        head, _, tail = text.rpartition("-")
        month, _, day = tail.partition("~")
        parts, day_field = [head or "*", month, day], DAY_FROM_END
    else:
        parts = text.split("-")
        if len(parts) == 2:
            parts = ["*", *parts]
    if len(parts) != 3:
        return f"{text!r} is not a date (YYYY-MM-DD, MM-DD, with *, lists, ranges)"
    year, month, day = parts
    return YEAR.problem(year, year=True) or MONTH.problem(month) or day_field.problem(day)


def _time(text: str) -> str | None:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        return f"{text!r} is not a time (HH:MM or HH:MM:SS)"
    problem = HOUR.problem(parts[0]) or MINUTE.problem(parts[1])
    return problem or (SECOND.problem(parts[2]) if len(parts) == 3 else None)


def _year(value: float) -> float:
    """A year written with two digits, the way systemd reads it."""
    if value < 70:
        return value + 2000
    return value + 1900 if value < 100 else value
