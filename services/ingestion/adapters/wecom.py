"""WeCom (企业微信): the server API for customer groups.

WeCom lets an application do little in a customer group: a message to a group is a
`add_msg_template` task that the group owner confirms in the WeCom client, so `send_text` and
`send_link_card` are delivered as such tasks (the result says so); kicking, renaming, deleting a
message, red packets and dismissing are not in the API and are reported unsupported. A welcome
is WeCom's own: the group welcome template, which `sync_welcome_template` adds or edits. A live
code's groups are a join way (加入群聊, `sync_join_way`); a resigned staff member's groups pass
to a colleague by `groupchat/transfer` (`transfer_groups`, its failed list in the result; WeCom
sends no callback for it, so the owner changes are reported as events here); a reminder to a
staff member is the application's message (`remind_staff`, needs the app's `agent_id`).

Access tokens are fetched per corp and reused until shortly before they expire; an answer that
the token is invalid or expired (40014, 41001, 42001) fetches a new one and tries once more;
WeCom's frequency limits (45009, 45033) and system-busy (-1) are transient failures."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from cachetools import TLRUCache

from services.gen.shequn.v1 import actions_pb2, common_pb2, events_pb2
from services.ingestion.adapters import Outcome, delivered, failed, unsupported
from services.ingestion.credentials import CredentialStore, WecomCredentials
from services.ingestion.pacing import SharedWindows
from services.runtime.envelope import natural_id, new_event
from services.runtime.outbound import NotPublic
from services.runtime.settings import Settings
from services.runtime.wellformed import shortened

TOKEN_INVALID = {40014, 41001, 42001}
RATE_LIMITED = {45009, 45033}
BUSY = -1
BLOCKED_SECONDS = 60.0
_UNSUPPORTED = {
    "kick_member": "WeCom customer groups cannot remove members through the API",
    "rename_group": "WeCom customer groups cannot be renamed through the API",
    "delete_message": "WeCom cannot delete or recall a message in a customer group",
    "send_red_packet": "WeCom red packets cannot be sent through the API",
    "dismiss_group": "WeCom customer groups cannot be dismissed through the API",
}


# A reply to something said in a group (an auto-reply, a check-in's answer, a warning, a
# welcome) would reach the group only after its owner confirms a task: too late to be a reply.
IN_REPLY = (
    "WeCom cannot post into a customer group as it happens: a reply would wait for the group "
    "owner to confirm it (welcomes go through the group welcome template instead)"
)
_TOKENS_KEPT = 10_000
TRANSFER_MOST = 100  # groups one groupchat/transfer call takes
JOIN_WAY_MOST = 5  # groups one join way holds
Reports = Callable[[list[events_pb2.Event]], Awaitable[object]]


def _answer(response: httpx.Response) -> dict[str, Any]:
    """A WeCom answer: a JSON object with an integer errcode (0 when absent)."""
    answer = response.json()
    if not isinstance(answer, dict):
        raise ValueError("not a JSON object")
    code = answer.get("errcode", 0)
    answer["errcode"] = code if isinstance(code, int) else BUSY
    return answer


def _corp(tenant_id: str, credentials: WecomCredentials) -> str:
    return f"{tenant_id}:wecom:{credentials.corp_id}"


class WecomApi:
    def __init__(
        self,
        credentials: CredentialStore,
        http: httpx.AsyncClient,
        settings: Settings,
        shared: SharedWindows,
    ) -> None:
        self.credentials, self.http = credentials, http
        self.default_base = settings.wecom_api_base
        self.per_corp_limit = max(int(settings.wecom_calls_per_second), 1)
        self.shared = shared
        # (token, renew at) per app; each kept until it is due for renewal.
        self._tokens: TLRUCache[str, tuple[str, float]] = TLRUCache(
            _TOKENS_KEPT, lambda _app, token, now: token[1], timer=time.monotonic
        )

    async def call(
        self, tenant_id: str, path: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], Outcome | None]:
        """POST `body` to `path`; (the answer, None) on success, else (answer, why it failed)."""
        credentials = await self.credentials.wecom(tenant_id)
        if credentials is None:
            return {}, failed("WeCom is not configured for this tenant (PUT /v1/platforms/wecom)")
        for fresh_token in (False, True):
            try:
                token = await self._token(credentials, fresh_token)
                response = await self.http.post(
                    self._base(credentials) + path,
                    params={"access_token": token},
                    json=body,
                    timeout=10.0,
                )
                answer = _answer(response)
            except NotPublic as exc:
                return {}, failed(f"refused: api_base_url {exc}")
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                return {}, failed(f"WeCom unreachable: {type(exc).__name__}", transient=True)
            except (httpx.HTTPError, ValueError) as exc:
                # The call may have arrived: trying again could create the task twice.
                return {}, failed(f"outcome unknown: {type(exc).__name__}; not retried")
            code = answer["errcode"]
            if code == 0:
                return answer, None
            if code in TOKEN_INVALID and not fresh_token:
                continue
            reason = f"wecom {code}: {str(answer.get('errmsg', ''))[:200]}".strip()
            if code in RATE_LIMITED:  # WeCom blocks the corp for a minute, on every replica
                await self.shared.block(_corp(tenant_id, credentials), BLOCKED_SECONDS)
                return answer, failed(reason, transient=True, retry_after=BLOCKED_SECONDS)
            return answer, failed(reason, transient=code == BUSY)
        raise AssertionError("unreachable")

    async def _token(self, credentials: WecomCredentials, fresh: bool) -> str:
        # A token belongs to one app (corp id and secret) of one WeCom deployment.
        app = f"{self._base(credentials)}|{credentials.corp_id}|{credentials.secret}"
        cached = self._tokens.get(app)
        if cached and not fresh:
            return cached[0]
        response = await self.http.get(
            self._base(credentials) + "/cgi-bin/gettoken",
            params={"corpid": credentials.corp_id, "corpsecret": credentials.secret},
            timeout=10.0,
        )
        answer = _answer(response)
        token = answer.get("access_token")
        if answer["errcode"] != 0 or not isinstance(token, str):
            raise httpx.HTTPError(f"gettoken refused: {answer['errcode']}")
        expires_in = answer.get("expires_in")
        lifetime = expires_in if isinstance(expires_in, int) and 0 < expires_in <= 7200 else 7200
        # Renew five minutes early, so that no call goes out with a token about to expire.
        self._tokens[app] = (token, time.monotonic() + max(lifetime - 300, 1))
        return token

    async def wait(self, tenant_id: str) -> float:
        """Seconds before the tenant's corp may be called again (its per-corp frequency)."""
        credentials = await self.credentials.wecom(tenant_id)
        if credentials is None:
            return 0.0
        return await self.shared.wait(_corp(tenant_id, credentials), self.per_corp_limit, 1.0)

    async def agent_id(self, tenant_id: str) -> int | None:
        credentials = await self.credentials.wecom(tenant_id)
        return credentials.agent_id if credentials else None

    def _base(self, credentials: WecomCredentials) -> str:
        return (credentials.api_base_url or self.default_base).rstrip("/")

    async def group_details(
        self, tenant_id: str, chat_id: str
    ) -> tuple[dict[str, Any] | None, Outcome | None]:
        """name, owner and notice of a customer group (externalcontact/groupchat/get), or why
        they could not be read."""
        answer, problem = await self.call(
            tenant_id,
            "/cgi-bin/externalcontact/groupchat/get",
            {"chat_id": chat_id, "need_name": 1},
        )
        group = answer.get("group_chat") if problem is None else None
        return (group, None) if isinstance(group, dict) else (None, problem)


class WecomAdapter:
    def __init__(self, api: WecomApi, reports: Reports) -> None:
        self.api, self.reports = api, reports

    async def wait(self, action: actions_pb2.Action) -> float:
        if refusal(action) is not None:
            return 0.0
        return await self.api.wait(action.tenant_id)

    async def deliver(self, action: actions_pb2.Action) -> Outcome:
        kind = action.WhichOneof("kind") or ""
        if (why := refusal(action)) is not None:
            return unsupported(why)
        if kind == "sync_welcome_template":
            return await self._sync_welcome_template(action)
        if kind == "transfer_groups":
            return await self._transfer(action)
        if kind == "sync_join_way":
            return await self._sync_join_way(action)
        if kind == "remind_staff":
            return await self._remind(action)
        group, problem = await self.api.group_details(action.tenant_id, action.group_id)
        if group is None or not group.get("owner"):
            return problem or failed(
                "cannot read the group's owner from WeCom (groupchat/get)", transient=True
            )
        task: dict[str, Any] = {
            "chat_type": "group",
            "sender": group["owner"],
            "chat_id_list": [action.group_id],
            "allow_select": False,
        }
        if kind == "send_text":
            task["text"] = {"content": action.send_text.text}
        else:
            card = action.send_link_card
            task["attachments"] = [
                {
                    "msgtype": "link",
                    "link": {
                        "title": card.title,
                        "desc": card.description,
                        "url": card.url,
                        "picurl": card.image_url,
                    },
                }
            ]
        answer, problem = await self.api.call(
            action.tenant_id, "/cgi-bin/externalcontact/add_msg_template", task
        )
        if problem is not None:
            return problem
        task_id = shortened(str(answer.get("msgid", "")), 100)  # the answer is not ours to trust
        return Outcome("delivered", f"WeCom task {task_id}: sent once the group owner confirms it")

    async def _sync_welcome_template(self, action: actions_pb2.Action) -> Outcome:
        wanted = action.sync_welcome_template
        body: dict[str, Any] = {"text": {"content": wanted.text}}
        if wanted.template_id:
            body["template_id"] = wanted.template_id
            path = "/cgi-bin/externalcontact/group_welcome_template/edit"
        else:
            body["notify"] = 1  # tells the staff to apply it to their groups in the client
            path = "/cgi-bin/externalcontact/group_welcome_template/add"
        answer, problem = await self.api.call(action.tenant_id, path, body)
        if problem is not None:
            return problem
        template_id = wanted.template_id or answer.get("template_id")
        if not isinstance(template_id, str) or not 0 < len(template_id) <= 200:
            return failed("WeCom answered no template_id (group_welcome_template/add)")
        return delivered(template_id)

    async def _transfer(self, action: actions_pb2.Action) -> Outcome:
        """A resigned staff member's groups to the new owner, 100 at most a call; the groups
        WeCom refused come back as failed items, the others as owner changes."""
        wanted = action.transfer_groups
        if not 0 < len(wanted.group_ids) <= TRANSFER_MOST:
            return failed(f"1 to {TRANSFER_MOST} groups a transfer")
        body = {"chat_id_list": list(wanted.group_ids), "new_owner": wanted.new_owner_id}
        answer, problem = await self.api.call(
            action.tenant_id, "/cgi-bin/externalcontact/groupchat/transfer", body
        )
        if problem is not None:
            return problem
        refused = {}
        for item in answer.get("failed_chat_list") or []:
            if isinstance(item, dict) and item.get("chat_id") in wanted.group_ids:
                code, message = item.get("errcode"), str(item.get("errmsg", ""))[:200]
                refused[str(item["chat_id"])] = f"wecom {code}: {message}".strip()
        moved = [g for g in wanted.group_ids if g not in refused]
        await self.reports([_owner_changed(action, g) for g in moved])
        return Outcome(
            "delivered",
            f"{len(moved)} of {len(wanted.group_ids)} groups transferred",
            failed_items=tuple(refused.items()),
        )

    async def _sync_join_way(self, action: actions_pb2.Action) -> Outcome:
        wanted = action.sync_join_way
        if not 0 < len(wanted.group_ids) <= JOIN_WAY_MOST:
            return failed(f"1 to {JOIN_WAY_MOST} groups a join way")
        body: dict[str, Any] = {
            "scene": 2,  # a QR code
            "remark": wanted.remark[:30],
            "auto_create_room": int(wanted.auto_create_room),
            "chat_id_list": list(wanted.group_ids),
            "state": wanted.state,
        }
        if wanted.auto_create_room:
            body |= {"room_base_name": wanted.room_base_name, "room_base_id": wanted.room_base_id}
        path = "/cgi-bin/externalcontact/groupchat/"
        if wanted.config_id:
            body["config_id"] = wanted.config_id
        answer, problem = await self.api.call(
            action.tenant_id, path + ("update_join_way" if wanted.config_id else "add_join_way"),
            body,
        )  # fmt: skip
        if problem is not None:
            return problem
        config_id = wanted.config_id or answer.get("config_id")
        if not isinstance(config_id, str) or not 0 < len(config_id) <= 200:
            return failed("WeCom answered no config_id (groupchat/add_join_way)")
        found, problem = await self.api.call(
            action.tenant_id, path + "get_join_way", {"config_id": config_id}
        )
        way = found.get("join_way") if problem is None else None
        qr_code = way.get("qr_code") if isinstance(way, dict) else None
        link = qr_code if isinstance(qr_code, str) and len(qr_code) <= 2048 else ""
        return Outcome("delivered", message_id=config_id, link=link)

    async def _remind(self, action: actions_pb2.Action) -> Outcome:
        agent_id = await self.api.agent_id(action.tenant_id)
        if agent_id is None:
            return failed("set agent_id in the WeCom credentials to remind staff")
        body = {
            "touser": action.remind_staff.staff_id,
            "msgtype": "text",
            "agentid": agent_id,
            "text": {"content": action.remind_staff.text},
        }
        _, problem = await self.api.call(action.tenant_id, "/cgi-bin/message/send", body)
        return problem or Outcome("delivered")


def _owner_changed(action: actions_pb2.Action, group_id: str) -> events_pb2.Event:
    now = datetime.now(UTC)
    event = new_event(
        natural_id("wecom", action.action_id, group_id),
        action.tenant_id, group_id, common_pb2.PLATFORM_WECOM, now, now,
    )  # fmt: skip
    changed = event.group_updated
    changed.group.owner_id = action.transfer_groups.new_owner_id
    changed.changes.append(events_pb2.GROUP_CHANGE_OWNER)
    changed.actor.id = action.transfer_groups.previous_owner_id
    return event


def refusal(action: actions_pb2.Action) -> str | None:
    """Why WeCom cannot carry out the action, if it cannot."""
    kind = action.WhichOneof("kind") or ""
    if kind in _UNSUPPORTED:
        return _UNSUPPORTED[kind]
    if action.cause_event_id and kind in ("send_text", "send_link_card"):
        return IN_REPLY
    return None
