from __future__ import annotations

import json
import logging

from services.runtime.logs import JsonFormatter, log_context


def _line(message: str, *args: object) -> dict[str, object]:
    record = logging.LogRecord("test", logging.INFO, __file__, 1, message, args, None)
    line: dict[str, object] = json.loads(JsonFormatter("ingestion").format(record))
    return line


def test_lines_carry_the_event_and_tenant_in_hand() -> None:
    with log_context(tenant_id="t-1", event_id="e-1"):
        line = _line("event rejected: %s", "type: unknown")
    assert line["tenant_id"] == "t-1" and line["event_id"] == "e-1"
    assert line["service"] == "ingestion" and line["msg"] == "event rejected: type: unknown"
    assert "event_id" not in _line("outside any event")


def test_keys_and_tokens_are_masked() -> None:
    line = _line(
        "auth header %s, key %s, url %s, word %s",
        "Bearer sq_abcdefghijklmnop",
        "sq_ZYXWVUTSRQPONM",
        "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe",
        "bottlenecks",
    )
    message = str(line["msg"])
    for secret in ("abcdefghijklmnop", "ZYXWVUTSRQPONM", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"):
        assert secret not in message
    assert "bottlenecks" in message
