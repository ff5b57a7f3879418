"""Times as integers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.runtime.instants import stamp


def test_a_stamp_is_exact_to_the_microsecond() -> None:
    # int(timestamp() * 1e6) gives 2231166217305205 here: one microsecond early.
    at = datetime(2040, 9, 13, 16, 23, 37, 305206, tzinfo=UTC)
    assert stamp(at) == 2231166217305206
    assert stamp(at + timedelta(microseconds=1)) - stamp(at) == 1
    assert stamp(datetime(1970, 1, 1, tzinfo=UTC)) == 0
