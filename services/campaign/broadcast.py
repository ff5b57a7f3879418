"""Broadcasts (群群发), pure: one message to an audience (`audience.py`), at most
`broadcast_max_groups` groups."""

from __future__ import annotations

from pydantic import Field

from services.campaign.audience import Audience
from services.runtime.wellformed import KeyPart


class Broadcast(Audience):
    client_id: KeyPart | None = Field(
        None, description="the client's id: the same broadcast again sends nothing twice"
    )
    text: str = Field(min_length=1, max_length=2000)
