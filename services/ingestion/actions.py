"""`POST /v1/actions`: an operator or an integrated system asks for something to be done in a
group (send a message, kick a member, rename the group…). The request becomes an Action on
shequn.actions.v1 and is delivered like the actions the services decide."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.gen.shequn.v1 import actions_pb2, events_pb2
from services.ingestion.events import PLATFORMS, Id
from services.runtime.wellformed import KeyPart


class _ActionIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    group_id: KeyPart
    platform: Literal["sim", "wecom", "telegram", "generic"] = "sim"
    action_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class SendTextIn(_ActionIn):
    type: Literal["send_text"]
    text: Annotated[str, Field(min_length=1, max_length=4000)]
    mentions: list[str] = []


class SendLinkCardIn(_ActionIn):
    type: Literal["send_link_card"]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    description: str = ""
    image_url: str = ""


class DeleteMessageIn(_ActionIn):
    type: Literal["delete_message"]
    message_id: Id


class KickMemberIn(_ActionIn):
    type: Literal["kick_member"]
    member_id: KeyPart
    reason: str = ""


class RenameGroupIn(_ActionIn):
    type: Literal["rename_group"]
    name: Annotated[str, Field(min_length=1, max_length=128)]


class SendRedPacketIn(_ActionIn):
    type: Literal["send_red_packet"]
    amount: Annotated[float, Field(gt=0, le=20_000)]
    count: Annotated[int, Field(ge=1, le=100)] = 1
    greeting: str = ""
    member_id: str = ""


class DismissGroupIn(_ActionIn):
    type: Literal["dismiss_group"]
    farewell: str = ""


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
