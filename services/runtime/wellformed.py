"""Structural checks of any protobuf message, shared by the gRPC intake (which refuses what
fails them) and every consumer's decoder (which dead-letters it): enum values the schema knows,
timestamps a datetime can hold, and bounded strings. A message that passes cannot make a
handler raise on `Enum.Name()` or `Timestamp.ToDatetime()`. Also the one rule for ids that
become parts of natural keys, for every API that accepts them."""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from pydantic import Field

from services.runtime.refusals import Invalid

MAX_STRING = 20_000
MAX_ID = 200  # event, action and decision ids
# Group and member ids and series tags are parts of natural keys ("{tenant}:{group}:{member}"),
# so no ':'.
KEY_PART = re.compile(r"[^:\s]{1,200}")
KEY_PART_RULE = "1-200 characters, no ':' or white space"
KeyPart = Annotated[str, Field(pattern=f"^{KEY_PART.pattern}$", description=KEY_PART_RULE)]


def key_part(field: str, value: str) -> str:
    """`value`, refused as `field` unless it can be part of a natural key."""
    if not KEY_PART.fullmatch(value):
        raise Invalid(field, KEY_PART_RULE)
    return value


def page_args(limit: int, after: str | None) -> None:
    """Refuses a list's page that no list serves: 1 to 500 items, after a key."""
    if not 1 <= limit <= 500:
        raise Invalid("limit", "1 to 500")
    if after:
        key_part("after", after)


# A picture may travel inline as a data: URL; 512 KiB keeps its event well under Kafka's 1 MB
# message limit (ingestion holds every other media URL to 2,048 characters).
MAX_MEDIA_URL = 512 * 1024
_LONGER = {"shequn.v1.ChatMessage.media_url": MAX_MEDIA_URL}
# Lists (mentions, urls, tags) and the whole encoded message are bounded too, so that every
# accepted event fits in one Kafka message.
MAX_ENTRIES = 1_000
MAX_ENCODED_BYTES = 900 * 1024
# 1970-01-01 .. 2100-01-01: wide enough for any real event, narrow enough for every datetime.
MIN_SECONDS, MAX_SECONDS = 0, 4_102_444_800


def shortened(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with an ellipsis when it is longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def problem(message: Message, path: str = "") -> str | None:
    """The first structural problem as `field: reason`, or None. It runs on every event in
    every consumer, so each field's rule is worked out once (`_rule`), and a field's name is
    spelled only to report it."""
    if message.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
        seconds = getattr(message, "seconds", 0)
        if not MIN_SECONDS <= seconds < MAX_SECONDS:
            return f"{path}: timestamp out of range (1970..2100)"
        return None
    if not path and message.ByteSize() > MAX_ENCODED_BYTES:
        return f"message: at most {MAX_ENCODED_BYTES} bytes once encoded"
    for field, value in message.ListFields():
        kind, repeated, bound = _rule(field)
        if repeated and len(value) > MAX_ENTRIES:
            return f"{_name(path, field)}: at most {MAX_ENTRIES} entries"
        for item in value if repeated else (value,):
            if kind == _STRING and len(item) > bound:
                return f"{_name(path, field)}: at most {bound} characters"
            if kind == _ENUM and item not in bound:
                return f"{_name(path, field)}: unknown value {item}"
            if kind == _MESSAGE and (found := problem(item, _name(path, field))):
                return found
    return None


_STRING, _ENUM, _MESSAGE, _OTHER = range(4)


@functools.cache
def _rule(field: FieldDescriptor) -> tuple[int, bool, Any]:
    """What is checked of a field's values: their kind, whether the field is a list, and their
    bound (a string's length, an enum's known values)."""
    repeated = field.is_repeated
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _MESSAGE, repeated, None
    if field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        return _ENUM, repeated, frozenset(field.enum_type.values_by_number)
    if field.type == FieldDescriptor.TYPE_STRING:
        return _STRING, repeated, _LONGER.get(field.full_name, MAX_STRING)
    return _OTHER, repeated, None


def _name(path: str, field: FieldDescriptor) -> str:
    return f"{path}.{field.name}" if path else field.name
