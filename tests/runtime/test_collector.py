"""The collector tuning every service applies once started."""

from __future__ import annotations

import gc

from services.runtime.collector import YOUNG, spare_the_collector


def test_what_exists_at_start_is_frozen_and_young_collections_are_rarer() -> None:
    threshold = gc.get_threshold()
    try:
        spare_the_collector()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == YOUNG
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
