"""`POST /v1/actions`: an operator or an integrated system asks for something to be done in a
group (send a message, kick a member, rename the group…). The request becomes an Action on
shequn.actions.v1 and is delivered like the actions the services decide."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.gen.shequn.v1 import actions_pb2, events_pb2
from services.ingestion.events import PLATFORMS, Id
from services.runtime.auth import Role
from services.runtime.wellformed import KeyPart

Url = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2048)]


Said = Annotated[str, Field(min_length=1, max_length=4000)]  # Telegram's and WeCom's limit
Title = Annotated[str, Field(min_length=1, max_length=200)]
Note = Annotated[str, Field(max_length=1000)]  # descriptions, reasons, greetings


class _ActionIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    group_id: KeyPart
    platform: Literal["sim", "wecom", "telegram", "generic"] = "sim"
    # With the source ("api-" or the service) it stays within the 200 characters of an id.
    action_id: Annotated[str, Field(min_length=1, max_length=180)] | None = None


class SendTextIn(_ActionIn):
    type: Literal["send_text"]
    text: Said
    mentions: Annotated[list[KeyPart], Field(max_length=100)] = []


class SendLinkCardIn(_ActionIn):
    type: Literal["send_link_card"]
    title: Title
    url: Url
    description: Note = ""
    image_url: Url | Literal[""] = ""


class DeleteMessageIn(_ActionIn):
    type: Literal["delete_message"]
    message_id: Id


class KickMemberIn(_ActionIn):
    type: Literal["kick_member"]
    member_id: KeyPart
    reason: Note = ""


class RenameGroupIn(_ActionIn):
    type: Literal["rename_group"]
    name: Annotated[str, Field(min_length=1, max_length=128)]


class SendRedPacketIn(_ActionIn):
    type: Literal["send_red_packet"]
    amount: Annotated[float, Field(gt=0, le=20_000)]
    count: Annotated[int, Field(ge=1, le=100)] = 1
    greeting: Note = ""
    member_id: KeyPart | Literal[""] = ""


class DismissGroupIn(_ActionIn):
    type: Literal["dismiss_group"]
    farewell: Annotated[str, Field(max_length=4000)] = ""


ActionIn = Annotated[
    SendTextIn
    | SendLinkCardIn
    | DeleteMessageIn
    | KickMemberIn
    | RenameGroupIn
    | SendRedPacketIn
    | DismissGroupIn,
    Field(discriminator="type"),
]


# Who may ask for what (docs/architecture.md, "Roles"): content is an operator's; removing
# people and messages, renaming and dismissing groups are a group admin's powers.
ACTION_ROLES = {
    "send_text": Role.OPERATOR,
    "send_link_card": Role.OPERATOR,
    "send_red_packet": Role.OPERATOR,
    "delete_message": Role.ADMIN,
    "kick_member": Role.ADMIN,
    "rename_group": Role.ADMIN,
    "dismiss_group": Role.ADMIN,
}


def to_action(item: ActionIn, *, tenant_id: str, source: str = "api") -> actions_pb2.Action:
    action = actions_pb2.Action(
        action_id=item.action_id or f"{source}-{uuid.uuid4().hex}",
        tenant_id=tenant_id,
        group_id=item.group_id,
        platform=PLATFORMS[item.platform],
        source_service=source,
    )
    action.created_at.GetCurrentTime()
    match item:
        case SendTextIn():
            action.send_text.text = item.text
            action.send_text.mentions.extend(item.mentions)
        case SendLinkCardIn():
            action.send_link_card.CopyFrom(
                actions_pb2.SendLinkCard(
                    title=item.title,
                    url=item.url,
                    description=item.description,
                    image_url=item.image_url,
                )
            )
        case DeleteMessageIn():
            action.delete_message.message_id = item.message_id
        case KickMemberIn():
            action.kick_member.member_id, action.kick_member.reason = item.member_id, item.reason
        case RenameGroupIn():
            action.rename_group.name = item.name
        case SendRedPacketIn():
            packet = action.send_red_packet
            packet.total.CopyFrom(events_pb2.Money(minor=round(item.amount * 100), currency="CNY"))
            packet.count, packet.greeting, packet.member_id = (
                item.count,
                item.greeting,
                item.member_id,
            )
        case DismissGroupIn():
            action.dismiss_group.farewell = item.farewell
    return action
