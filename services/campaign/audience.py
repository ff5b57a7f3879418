"""Whom a broadcast or an SOP schedule reaches, pure: the groups named, or every active group of
a series tag or of an owner."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field, model_validator

from services.runtime.wellformed import KeyPart


class Audience(BaseModel):
    groups: list[KeyPart] | None = Field(None, description="the groups, by id")
    tag: KeyPart | None = Field(None, description="or: every active group of this series tag")
    owner: KeyPart | None = Field(None, description="or: every active group this staff owns")

    @model_validator(mode="after")
    def _one_choice(self) -> Audience:
        if sum(x is not None for x in (self.groups, self.tag, self.owner)) != 1:
            raise ValueError("give exactly one of groups, tag and owner")
        return self

    @property
    def field(self) -> str:
        """The field the audience was given by."""
        return next(f for f in ("groups", "tag", "owner") if getattr(self, f) is not None)


def chosen(audience: Audience, directory: Iterable[Mapping[str, Any]]) -> list[str]:
    """The group ids the audience names, in its order (a tag's or owner's: by id)."""
    if audience.groups is not None:
        return list(dict.fromkeys(audience.groups))
    found = [
        g["group_id"]
        for g in directory
        if (audience.tag is not None and audience.tag in g.get("tags", []))
        or (audience.owner is not None and g.get("owner_id") == audience.owner)
    ]
    return sorted(found)


def skipped_reason(doc: Mapping[str, Any] | None) -> str | None:
    if doc is None:
        return "no event of this group has been seen"
    if doc.get("status") == "dismissed":
        return "dismissed"
    return None
