"""A tenant's ruleset (群规), with per-group overrides. Validated with field-level errors; the
defaults are the zh-CN starter rules a new tenant gets."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.moderation.detect.lexicon import ABUSE_WORDS, AD_PHRASES

Word = str
Role = Literal["owner", "admin", "member"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Flood(_Part):
    enabled: bool = True
    max_messages: int = Field(5, ge=1, le=1000, description="more than this many …")
    window_seconds: int = Field(10, ge=1, le=3600, description="… within this many seconds")
    same_text: int = Field(3, ge=2, le=100, description="the same text this many times …")
    same_text_window_seconds: int = Field(60, ge=1, le=86400, description="… within this")


class CrossGroup(_Part):
    enabled: bool = True
    groups: int = Field(3, ge=2, le=100, description="the same text in this many groups …")
    window_seconds: int = Field(600, ge=10, le=86400, description="… within this many seconds")


class Penalties(_Part):
    window_days: int = Field(30, ge=1, le=365, description="violations counted over this")
    warn: bool = True
    delete_message: bool = True
    kick_at: int = Field(2, ge=1, le=100, description="the violation that kicks and blacklists")


class Ruleset(_Part):
    banned_keywords: list[Word] = Field(default_factory=list, max_length=100_000)
    abuse_lexicon: list[Word] = Field(default_factory=lambda: list(ABUSE_WORDS), max_length=100_000)
    ad_phrases: list[Word] = Field(default_factory=lambda: list(AD_PHRASES), max_length=100_000)
    ads: bool = True
    detect_phone_numbers: bool = True
    url_whitelist: list[str] = Field(
        default_factory=list, description="domains, subdomains included"
    )
    mini_program_whitelist: list[str] = Field(default_factory=list, description="app ids")
    flood: Flood = Flood()
    cross_group: CrossGroup = CrossGroup()
    probation_minutes: int = Field(10, ge=0, le=10080)
    invite_policy: bool = Field(
        False, description="非管理员拉人者踢: remove members a non-admin invited"
    )
    rename_lock: bool = Field(False, description="禁止改群名: revert renames by non-admins")
    blacklist: bool = True
    penalties: Penalties = Penalties()
    exempt_roles: list[Role] = Field(
        default_factory=lambda: list[Role](["owner", "admin"]),
        description="exempt from flood, probation and cross-group (never from the blacklist)",
    )
    exempt_tags: list[str] = Field(default_factory=lambda: ["kol"])
    content_exempt_roles: list[Role] = Field(
        default_factory=lambda: list[Role](["owner", "admin"]),
        description="exempt from the ad and banned-keyword rules: a shop owner posting today's "
        "deal with a link is the point of the group; [] holds everyone to them",
    )
