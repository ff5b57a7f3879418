"""Engagement's settings (API.md "Engagement"): per tenant, with an override per group, kept as
`runtime.overrides` keeps such settings."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from pymongo.asynchronous.collection import AsyncCollection

from services.engagement.checkin import CheckinRules
from services.engagement.redpackets import RedPacketRules
from services.engagement.tiers import TierRules
from services.engagement.welcome import WelcomeRules
from services.runtime.instants import TimeZoneName, zone_of
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
    timezone: TimeZoneName = Field(
        None, description="an IANA time zone for the tenant's days; none: the deployment's"
    )

    def zone(self, default: ZoneInfo) -> ZoneInfo:
        return zone_of(self.timezone, default)


class TenantSettings(Overridable[EngagementSettings]):
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        super().__init__(collection, EngagementSettings)
