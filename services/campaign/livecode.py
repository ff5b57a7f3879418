"""Group live codes (群活码), pure: a code, its ordered pool of groups and what a scan takes.

A group's place count (`taken`) is its members plus the scans still waiting to become joins:
a scan takes a place only while fewer than the capacity are taken, so no group is ever given
beyond it, however many scan at once; joins and leaves from the events topic keep the members
true, and a reservation not joined in time gives its place back."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.runtime.wellformed import KeyPart

MAX_GROUPS = 100
JOIN_WAY_GROUPS = 5  # groups a WeCom join way holds
STATE_MOST = 30  # characters of a WeCom join way's state


class LiveCode(BaseModel):
    code: KeyPart = Field(description="the code's public name, unique across tenants")
    groups: list[KeyPart] = Field(
        min_length=1, max_length=MAX_GROUPS, description="filled in this order"
    )
    capacity: int = Field(200, ge=1, le=10_000, description="members a group takes from the code")
    channel: str = Field(
        "", max_length=64, description="渠道: the tag of the members it brings (a channel code)"
    )
    room_base_name: str = Field(
        "",
        max_length=40,
        description="WeCom: once every group of the join way is full, WeCom makes new groups"
        " named this and a number (auto_create_room); empty: it makes none",
    )


def free_places(taken: list[int], capacity: int) -> int:
    return sum(max(capacity - t, 0) for t in taken)


def crossed_low(free_after: int, low: int) -> bool:
    """Whether the scan that left `free_after` places is the one that made the pool low: scans
    take one place each, so exactly one of them leaves `low - 1`."""
    return free_after == low - 1


def join_way_groups(pool: list[str], taken: dict[str, int], capacity: int) -> list[str]:
    """The groups a WeCom join way should hold now: the first five of the pool with room (its
    members counted from joins), rotating as groups fill; the last five when all are full, so
    that WeCom's own auto_create_room takes over from them."""
    room = [g for g in pool if taken.get(g, 0) < capacity]
    return (room or pool[-JOIN_WAY_GROUPS:])[:JOIN_WAY_GROUPS]
