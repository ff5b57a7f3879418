"""Times as integers, exactly: plain code for domain rules and the store alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def stamp(at: datetime) -> int:
    """A time as epoch microseconds, for every time that an update writes or a filter compares.

    Exact: a float timestamp times a million rounds one in a hundred times after 2038. Dates are
    kept only where a document is inserted whole and never compared: the embedded
    MongoDB-protocol server turns a date written by `$set` or `$max` into a string, after which
    comparisons with it silently fail. Integers behave the same on both servers."""
    return (at - _EPOCH) // _MICROSECOND


def from_stamp(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _known_zone(value: str | None) -> str | None:
    if value is not None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"not a time zone: {value!r}") from None
    return value


# An IANA time zone a tenant or a schedule may name; None: the deployment's default.
TimeZoneName = Annotated[str | None, AfterValidator(_known_zone)]


def zone_of(name: str | None, default: ZoneInfo) -> ZoneInfo:
    return ZoneInfo(name) if name else default
