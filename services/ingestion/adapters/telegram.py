"""Telegram: actions become Bot API calls (sendMessage, deleteMessage, banChatMember,
setChatTitle), paced under Telegram's limits — 20 messages a minute per group, 30 a second per
bot — and its 429 `retry_after` honoured for the bot (bounded). `wait` says how long until the
next call may go; the delivery schedules it, never sleeps. A group's id is its chat id."""

from __future__ import annotations

import html
import math
from typing import Any

import httpx

from services.gen.shequn.v1 import actions_pb2
from services.ingestion.adapters import (
    NO_JOIN_WAYS,
    ONLY_WECOM,
    Outcome,
    delivered,
    failed,
    unsupported,
)
from services.ingestion.credentials import CredentialStore
from services.ingestion.pacing import SharedWindows, SlidingWindow
from services.runtime.outbound import NotPublic
from services.runtime.settings import Settings


def bot_request(action: actions_pb2.Action) -> tuple[str, dict[str, Any]] | str:
    """The Bot API method and parameters for an action, or why Telegram cannot do it."""
    chat = action.group_id
    kind = action.WhichOneof("kind")
    if kind == "send_text":
        text = html.escape(action.send_text.text)
        mentions = " ".join(
            f'<a href="tg://user?id={html.escape(m)}">@{html.escape(m)}</a>'
            for m in action.send_text.mentions
        )
        body = f"{mentions} {text}" if mentions else text
        return "sendMessage", {"chat_id": chat, "text": body, "parse_mode": "HTML"}
    if kind == "send_link_card":
        card = action.send_link_card
        text = "\n".join(
            p
            for p in (
                f"<b>{html.escape(card.title)}</b>",
                html.escape(card.description),
                html.escape(card.url),
            )
            if p
        )
        return "sendMessage", {"chat_id": chat, "text": text, "parse_mode": "HTML"}
    if kind == "delete_message":
        if not action.delete_message.message_id.isdigit():
            return "a Telegram message id is a number"
        return "deleteMessage", {
            "chat_id": chat,
            "message_id": int(action.delete_message.message_id),
        }
    if kind == "kick_member":
        if not action.kick_member.member_id.isdigit():
            return "a Telegram user id is a number"
        return "banChatMember", {"chat_id": chat, "user_id": int(action.kick_member.member_id)}
    if kind == "rename_group":
        return "setChatTitle", {"chat_id": chat, "title": action.rename_group.name}
    if kind == "send_red_packet":
        return "Telegram has no red packets"
    if kind == "dismiss_group":
        return "a Telegram bot cannot delete a group"
    if kind == "sync_welcome_template":
        return ONLY_WECOM
    if kind == "sync_join_way":
        return NO_JOIN_WAYS
    if kind == "transfer_groups":
        return "a Telegram bot cannot transfer a group's ownership"
    if kind == "remind_staff":
        # A bot writes to a person who has started a chat with it, by their user id.
        if not action.remind_staff.staff_id.isdigit():
            return "a Telegram user id is a number"
        text = html.escape(action.remind_staff.text)
        return "sendMessage", {"chat_id": int(action.remind_staff.staff_id), "text": text,
                               "parse_mode": "HTML"}  # fmt: skip
    return f"unknown action {kind!r}"


def outcome_of(status_code: int, body: Any) -> Outcome:
    """Read a Bot API answer: `{"ok": true, ...}` or `{"ok": false, "error_code", ...}`."""
    if isinstance(body, dict) and body.get("ok") is True:
        result = body.get("result")
        return delivered(result.get("message_id") if isinstance(result, dict) else None)
    description = str(body.get("description", ""))[:200] if isinstance(body, dict) else ""
    found = body.get("error_code") if isinstance(body, dict) else None
    code = found if isinstance(found, int) else status_code
    reason = f"telegram {code}: {description or 'no description'}"
    if code == 429:
        parameters = body.get("parameters") if isinstance(body, dict) else None
        wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
        seconds = float(wait) if isinstance(wait, int | float) and 0 < wait < math.inf else 1.0
        return failed(reason, transient=True, retry_after=seconds)
    return failed(reason, transient=code >= 500)


class TelegramAdapter:
    def __init__(
        self,
        credentials: CredentialStore,
        http: httpx.AsyncClient,
        settings: Settings,
        shared: SharedWindows,
    ) -> None:
        self.credentials, self.http, self.base = credentials, http, settings.telegram_api_base
        self.per_group = SlidingWindow(int(settings.telegram_group_messages_per_minute), 60.0)
        self.per_bot_limit = int(settings.telegram_bot_messages_per_second)
        self.shared = shared
        self.longest_block = settings.delivery_max_retry_after_seconds

    async def _bot(self, action: actions_pb2.Action) -> str | None:
        """The key of the tenant's bot: the tenant's own, since a bot's id is public."""
        credentials = await self.credentials.telegram(action.tenant_id)
        if credentials is None:
            return None
        return f"{action.tenant_id}:telegram:{credentials.bot_token.split(':', 1)[0]}"

    async def wait(self, action: actions_pb2.Action) -> float:
        bot = await self._bot(action)
        request = bot_request(action)
        if bot is None or isinstance(request, str):
            return 0.0  # deliver() says why it cannot
        group = f"{bot}:{action.group_id}"
        if request[0] == "sendMessage" and (wait := self.per_group.wait(group, take=False)):
            return wait
        if wait := await self.shared.wait(bot, self.per_bot_limit, 1.0):
            return wait
        if request[0] == "sendMessage":
            self.per_group.wait(group)
        return 0.0

    async def deliver(self, action: actions_pb2.Action) -> Outcome:
        request = bot_request(action)
        if isinstance(request, str):
            return unsupported(request)
        method, params = request
        credentials = await self.credentials.telegram(action.tenant_id)
        if credentials is None:
            return failed("Telegram is not configured for this tenant (PUT /v1/platforms/telegram)")
        base = (credentials.api_base_url or self.base).rstrip("/")
        try:
            response = await self.http.post(
                f"{base}/bot{credentials.bot_token}/{method}", json=params, timeout=10.0
            )
        except NotPublic as exc:
            return failed(f"refused: api_base_url {exc}")
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Nothing reached Telegram: safe to try again. (The exception text can carry the
            # URL, and with it the token: only its kind is reported.)
            return failed(f"telegram unreachable: {type(exc).__name__}", transient=True)
        except httpx.HTTPError as exc:
            # The request may have arrived: trying again could post the message twice.
            return failed(f"outcome unknown: {type(exc).__name__}; not retried")
        try:
            body = response.json()
        except ValueError:
            body = None
        outcome = outcome_of(response.status_code, body)
        if outcome.retry_after and (bot := await self._bot(action)):
            # Telegram's wait holds for the bot, on every replica; never longer than the bound.
            await self.shared.block(bot, min(outcome.retry_after, self.longest_block))
        return outcome
