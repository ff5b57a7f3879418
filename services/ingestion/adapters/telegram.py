"""Telegram: actions become Bot API calls (sendMessage, deleteMessage, banChatMember,
setChatTitle), paced under Telegram's limits — 20 messages a minute per group, 30 a second per
bot — and its 429 `retry_after` honoured. A group's id is its chat id."""

from __future__ import annotations

import html
from typing import Any

import httpx

from services.gen.shequn.v1 import actions_pb2
from services.ingestion.adapters import DELIVERED, Outcome, failed, unsupported
from services.ingestion.credentials import CredentialStore
from services.ingestion.ratelimit import SlidingWindow
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
    return f"unknown action {kind!r}"


def outcome_of(status_code: int, body: Any) -> Outcome:
    """Read a Bot API answer: `{"ok": true, ...}` or `{"ok": false, "error_code", ...}`."""
    if isinstance(body, dict) and body.get("ok") is True:
        return DELIVERED
    description = str(body.get("description", ""))[:200] if isinstance(body, dict) else ""
    code = int(body.get("error_code", status_code)) if isinstance(body, dict) else status_code
    reason = f"telegram {code}: {description or 'no description'}"
    if code == 429:
        parameters = body.get("parameters") or {} if isinstance(body, dict) else {}
        return failed(reason, transient=True, retry_after=float(parameters.get("retry_after", 1)))
    return failed(reason, transient=code >= 500)


class TelegramAdapter:
    def __init__(
        self, credentials: CredentialStore, http: httpx.AsyncClient, settings: Settings
    ) -> None:
        self.credentials, self.http, self.base = credentials, http, settings.telegram_api_base
        self.per_group = SlidingWindow(int(settings.telegram_group_messages_per_minute), 60.0)
        self.per_bot = SlidingWindow(int(settings.telegram_bot_messages_per_second), 1.0)

    async def deliver(self, action: actions_pb2.Action) -> Outcome:
        request = bot_request(action)
        if isinstance(request, str):
            return unsupported(request)
        method, params = request
        credentials = await self.credentials.telegram(action.tenant_id)
        if credentials is None:
            return failed("Telegram is not configured for this tenant (PUT /v1/platforms/telegram)")
        bot = credentials.bot_token.split(":", 1)[0]
        if method == "sendMessage":
            await self.per_group.acquire(f"{bot}:{action.group_id}")
        await self.per_bot.acquire(bot)
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
        if outcome.retry_after:
            self.per_bot.block(bot, outcome.retry_after)  # Telegram's wait holds for the bot
        return outcome
