"""Engagement's settings (API.md "Engagement"): per tenant, with an override per group, kept as
`runtime.overrides` keeps such settings."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator
from pymongo.asynchronous.collection import AsyncCollection

from services.engagement.checkin import CheckinRules
from services.engagement.redpackets import RedPacketRules
from services.engagement.tiers import TierRules
from services.engagement.welcome import WelcomeRules
from services.runtime.overrides import Overridable
from services.runtime.store import Document

SETTINGS = "settings"


class EngagementSettings(BaseModel):
    welcome: WelcomeRules = Field(default_factory=WelcomeRules)
    checkin: CheckinRules = Field(default_factory=CheckinRules)
    tiers: TierRules = Field(default_factory=TierRules)
    red_packets: RedPacketRules = Field(default_factory=RedPacketRules)
    assistant_mentions: list[str] = Field(
        default_factory=lambda: ["shequn-bot"],
        max_length=10,
        description="who the assistant is in a message's mentions: its member ids and"
        ' @usernames (Telegram: the bot\'s "@username")',
    )
    timezone: str | None = Field(
        None, description="an IANA time zone for the tenant's days; none: the deployment's"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"not a time zone: {value!r}") from None
        return value

    def zone(self, default: ZoneInfo) -> ZoneInfo:
        return ZoneInfo(self.timezone) if self.timezone else default


class TenantSettings(Overridable[EngagementSettings]):
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        super().__init__(collection, EngagementSettings)
