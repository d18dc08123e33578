"""Date ranges in the site timezone: periods, the comparison period and time buckets.

A resolved range is a half-open UTC interval ``[start, end)`` plus the local
dates it covers, so that "7d" in Europe/Berlin means seven Berlin days, DST
included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.errors import InvalidField

PERIOD_DAYS = {"7d": 7, "28d": 28, "30d": 30, "91d": 91}
PERIOD_MONTHS = {"6mo": 6, "12mo": 12}
MAX_RANGE_DAYS = 3660
# The ``time`` dimension's bucket, as Plausible picks it from the range's length (its last
# second minus its first, in whole units): hours up to 48, days up to 40, weeks up to 52.
TIME_BUCKETS = (("time:hour", timedelta(hours=1), 48), ("time:day", timedelta(days=1), 40),
                ("time:week", timedelta(weeks=1), 52))
# The store keeps times as UInt32 seconds since 1970 (up to 2106-02-07), and a report
# reads a day beyond each edge of its range, in a timezone up to 14 hours off UTC.
FIRST_REPORT_DAY = date(1971, 1, 1)
LAST_REPORT_DAY = date(2105, 12, 31)


@dataclass(frozen=True)
class DateRange:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    first_day: date  # local
    last_day: date  # local, inclusive

    def previous(self, timezone_name: str) -> DateRange:
        """The period of the same length just before this one."""
        if _is_midnight(self.start, timezone_name):
            length = (self.last_day - self.first_day).days + 1
            return days_range(self.first_day - timedelta(days=length),
                              self.first_day - timedelta(days=1), timezone_name,
                              "include.comparison")
        span = self.end - self.start
        return moment_range(self.start - span, self.start, timezone_name)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField(f"unknown timezone {name!r}", "timezone") from None


def resolve(value: str | tuple[str, str], timezone_name: str, now: datetime,
            first_data_day: date | None = None) -> DateRange:
    """The UTC interval of a ``date_range`` value, with days in ``timezone_name``."""
    today = now.astimezone(zone(timezone_name)).date()
    if isinstance(value, tuple) and "T" in value[0]:
        return moments_range(value[0], value[1], timezone_name)
    if isinstance(value, tuple):
        return days_range(report_day(value[0], "date_range[0]"),
                          report_day(value[1], "date_range[1]"), timezone_name)
    if value == "day":
        return days_range(today, today, timezone_name)
    if value == "24h":
        return moment_range(now - timedelta(hours=24), now, timezone_name)
    if value in PERIOD_DAYS:
        return days_range(today - timedelta(days=PERIOD_DAYS[value] - 1), today, timezone_name)
    if value == "month":  # the whole calendar month, as in Plausible, days to come included
        return days_range(today.replace(day=1),
                          _months_before(today.replace(day=1), -1) - timedelta(days=1),
                          timezone_name)
    if value in PERIOD_MONTHS:
        return days_range(_months_before(today.replace(day=1), PERIOD_MONTHS[value] - 1),
                          today, timezone_name)
    if value == "year":  # the whole calendar year, as month
        return days_range(today.replace(month=1, day=1), today.replace(month=12, day=31),
                          timezone_name)
    if value == "all":
        return days_range(min(first_data_day or today, today), today, timezone_name)
    raise InvalidField("unknown period (day, 24h, 7d, 28d, 30d, 91d, month, 6mo, 12mo, year, "
                       "all, or [start, end] ISO dates)", "date_range")


def parse_moment(text: str, field: str) -> datetime:
    """An ISO date-time with its offset (Plausible's date_range form), or InvalidField."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidField(f"{text!r} is not an ISO date-time", field) from None
    if moment.utcoffset() is None:
        raise InvalidField("a date-time needs its offset (Z or +02:00)", field)
    return moment


def moments_range(first: str, last: str, timezone_name: str) -> DateRange:
    """Two ISO date-times, both included to the second as Plausible reads them: whole local
    days are those days (so the echo of a range, posted again, is that range), anything
    else the moments between."""
    start = parse_moment(first, "date_range[0]").astimezone(UTC)
    end = parse_moment(last, "date_range[1]").astimezone(UTC) + timedelta(seconds=1)
    local = zone(timezone_name)
    if _is_midnight(start, timezone_name) and _is_midnight(end, timezone_name):
        return days_range(start.astimezone(local).date(),
                          end.astimezone(local).date() - timedelta(days=1), timezone_name)
    if end <= start:
        raise InvalidField("the end is before the start", "date_range")
    if start < local_midnight(FIRST_REPORT_DAY, timezone_name) \
            or end > local_midnight(LAST_REPORT_DAY, timezone_name):
        raise InvalidField(f"reports cover {FIRST_REPORT_DAY} to {LAST_REPORT_DAY}", "date_range")
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise InvalidField(f"longer than {MAX_RANGE_DAYS} days", "date_range")
    return DateRange(start, end, start.astimezone(local).date(),
                     (end - timedelta(microseconds=1)).astimezone(local).date())


def days_range(first: date, last: date, timezone_name: str,
               field: str = "date_range") -> DateRange:
    if first < FIRST_REPORT_DAY or last > LAST_REPORT_DAY:
        raise InvalidField(f"reports cover {FIRST_REPORT_DAY} to {LAST_REPORT_DAY}", field)
    if last < first:
        raise InvalidField("the end date is before the start date", "date_range")
    if (last - first).days > MAX_RANGE_DAYS:
        raise InvalidField(f"longer than {MAX_RANGE_DAYS} days", "date_range")
    return DateRange(local_midnight(first, timezone_name),
                     local_midnight(last + timedelta(days=1), timezone_name), first, last)


def moment_range(start: datetime, end: datetime, timezone_name: str) -> DateRange:
    local = zone(timezone_name)
    return DateRange(start.astimezone(UTC), end.astimezone(UTC),
                     start.astimezone(local).date(), end.astimezone(local).date())


def local_midnight(day: date, timezone_name: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone(timezone_name)) \
        .astimezone(UTC)


def is_hour_aligned(moment: datetime) -> bool:
    return moment.minute == 0 and moment.second == 0 and moment.microsecond == 0


def time_bucket(period: DateRange) -> str:
    """The dimension ``time`` stands for over ``period``: hour, day, week or month."""
    span = period.end - period.start - timedelta(seconds=1)
    for name, unit, most in TIME_BUCKETS:
        if span // unit <= most:
            return name
    return "time:month"


def bucket_labels(dimension: str, period: DateRange, timezone_name: str) -> list[str]:
    """Every time bucket of ``period`` as the API shows it, in order.

    A week is labelled by its Monday, or by the range's first day when the range starts
    later in that week (Plausible's rule); a month always by its first day.
    """
    local = zone(timezone_name)
    if dimension == "time:hour":
        labels, moment = [], period.start.replace(minute=0, second=0, microsecond=0)
        while moment < period.end:
            labels.append(moment.astimezone(local).strftime("%Y-%m-%d %H:00:00"))
            moment += timedelta(hours=1)
        return list(dict.fromkeys(labels))
    days = [period.first_day + timedelta(days=offset)
            for offset in range((period.last_day - period.first_day).days + 1)]
    if dimension == "time:week":
        days = [max(day - timedelta(days=day.weekday()), period.first_day) for day in days]
    elif dimension == "time:month":
        days = [day.replace(day=1) for day in days]
    return list(dict.fromkeys(day.isoformat() for day in days))


def _is_midnight(moment: datetime, timezone_name: str) -> bool:
    local = moment.astimezone(zone(timezone_name))
    return (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)


def iso_day(text: str, field: str) -> date:
    """``text`` as a date, or InvalidField naming ``field`` (reports, export, erase)."""
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidField(f"{field} {text!r} is not a date (YYYY-MM-DD)", field) from None


def report_day(text: str, field: str) -> date:
    """``text`` as a date the store can hold a day either side of (reports, export, erase)."""
    day = iso_day(text, field)
    if not FIRST_REPORT_DAY <= day <= LAST_REPORT_DAY:
        raise InvalidField(f"{field} {text!r} is outside {FIRST_REPORT_DAY} to "
                           f"{LAST_REPORT_DAY}", field)
    return day


def _months_before(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)
