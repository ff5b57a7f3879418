"""A service whose Kafka certificates are renewed under it stops itself to read them again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.runtime.service import restart_on_renewal


async def test_renewed_certificates_stop_the_service_and_unchanged_ones_do_not(
    tmp_path: Path,
) -> None:
    files = [tmp_path / "ca.crt", tmp_path / "user.crt"]
    for f in files:
        f.write_text("old")
    stop = asyncio.Event()
    watching = asyncio.create_task(restart_on_renewal([str(f) for f in files], 0.01, 0.05)(stop))
    await asyncio.sleep(0.1)
    assert not stop.is_set()  # nothing changed
    files[1].write_text("renewed")
    await asyncio.wait_for(watching, 2)
    assert stop.is_set()


async def test_a_service_stopping_for_another_reason_stops_watching(tmp_path: Path) -> None:
    (tmp_path / "user.crt").write_text("old")
    stop = asyncio.Event()
    watching = asyncio.create_task(restart_on_renewal([str(tmp_path / "user.crt")], 0.01)(stop))
    stop.set()
    await asyncio.wait_for(watching, 2)
