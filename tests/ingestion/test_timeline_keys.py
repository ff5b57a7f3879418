"""Timeline positions, without I/O: the same keys as entries written before, in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from services.ingestion.intake import ItemResult
from services.ingestion.timeline import entry_id

SHANGHAI = timezone(timedelta(hours=8))


def test_a_position_is_the_utc_time_to_the_microsecond_as_before() -> None:
    for at in (
        datetime(2026, 12, 1, 19, 5, 7, 42, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2027, 1, 1, 7, 59, 59, 999_999, tzinfo=SHANGHAI),
    ):
        expected = f"t1:g-1:{at.astimezone(UTC):%Y%m%dT%H%M%S%f}:e:ev-1"
        assert entry_id("t1", "g-1", at, "e", "ev-1") == expected
    assert entry_id("t1", "g-1", datetime(2027, 1, 1, 7, 59, tzinfo=SHANGHAI), "a", "x") == (
        "t1:g-1:20261231T235900000000:a:x"
    )


def test_positions_sort_as_their_times() -> None:
    start = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    times = [start + timedelta(microseconds=n * 37_501) for n in range(200)]
    keys = [entry_id("t1", "g-1", at, "e", f"{n:03d}") for n, at in enumerate(times)]
    assert sorted(keys) == keys


def test_an_item_result_answers_with_every_field() -> None:
    assert ItemResult("ev-1", "accepted").as_json() == {
        "event_id": "ev-1",
        "status": "accepted",
        "error": "",
    }
    assert ItemResult("ev-2", "rejected", "group_id: required").as_json()["error"] == (
        "group_id: required"
    )
