"""A local stand-in for the Telegram Bot API: it records every request and answers like the
real API — `{"ok": true, "result": …}`, its error objects and its 429 with `retry_after` — in
the order a test scripts per chat."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from services.devtools.stack import free_port


@dataclass
class Call:
    token: str
    method: str
    params: dict[str, Any]
    at: float


@dataclass
class FakeTelegram:
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    scripts: dict[str, list[tuple[int, dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    delay: float = 0.0

    def answer(self, chat_id: str, *responses: tuple[int, dict[str, Any]]) -> None:
        """The next answers for requests about `chat_id`; afterwards, success."""
        self.scripts[chat_id].extend(responses)

    async def count(self) -> int:
        return len(self.calls)

    def calls_for(self, chat_id: str) -> list[Call]:
        return [c for c in self.calls if str(c.params.get("chat_id")) == chat_id]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/bot{token}/{method}")
        async def bot_api(token: str, method: str, request: Request) -> JSONResponse:
            params = await request.json()
            self.calls.append(Call(token, method, params, time.monotonic()))
            if self.delay:
                await asyncio.sleep(self.delay)
            script = self.scripts.get(str(params.get("chat_id")))
            if script:
                status, body = script.pop(0)
                return JSONResponse(body, status_code=status)
            result: Any = {"message_id": len(self.calls), "chat": {"id": params.get("chat_id")}}
            return JSONResponse({"ok": True, "result": result if method == "sendMessage" else True})

        return app


TOO_MANY = (
    429,
    {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    },
)
SERVER_ERROR = (500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})
NOT_FOUND = (
    400,
    {"ok": False, "error_code": 400, "description": "Bad Request: message to delete not found"},
)


@contextlib.asynccontextmanager
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with serve_fake(FakeTelegram()) as fake:
        yield fake


# WeCom's published sample (WXBizMsgCrypt): Token, EncodingAESKey, CorpID.
TOKEN, AES_KEY, CORP_ID = (
    "QDG6eK",
    "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "wx5823bf96d3bd56c7",
)


@dataclass
class FakeWecom:
    """A local stand-in for the WeCom server API: gettoken, groupchat/get, add_msg_template,
    group welcome templates (kept in `templates`), join ways (`join_ways`), group transfers
    (groups in `refuse` are on the failed list that many times) and application messages, with
    scripted error answers (errcode/errmsg, HTTP 200 as WeCom does)."""

    url: str = ""
    calls: list[Call] = field(default_factory=list)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    scripts: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    tokens_issued: int = 0
    templates: dict[str, str] = field(default_factory=dict)  # template id: its text
    join_ways: dict[str, dict[str, Any]] = field(default_factory=dict)  # config id: its body
    refuse: dict[str, int] = field(default_factory=dict)  # chat id: transfers to refuse

    def answer(self, path: str, *answers: dict[str, Any]) -> None:
        self.scripts[path].extend(answers)

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == path]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/cgi-bin/gettoken")
        async def gettoken(corpid: str, corpsecret: str) -> dict[str, Any]:
            self.calls.append(Call(corpsecret, "gettoken", {"corpid": corpid}, time.monotonic()))
            self.tokens_issued += 1
            return {
                "errcode": 0,
                "errmsg": "ok",
                "access_token": f"token-{self.tokens_issued}",
                "expires_in": 7200,
            }

        @app.post("/cgi-bin/externalcontact/groupchat/get")
        async def groupchat_get(access_token: str, request: Request) -> dict[str, Any]:
            body = await request.json()
            self.calls.append(Call(access_token, "groupchat/get", body, time.monotonic()))
            if self.scripts.get("groupchat/get"):
                return self.scripts["groupchat/get"].pop(0)
            group = self.groups.get(body.get("chat_id"))
            if group is None:
                return {"errcode": 701008, "errmsg": "not a customer group"}
            return {
                "errcode": 0,
                "errmsg": "ok",
                "group_chat": {"chat_id": body["chat_id"], **group},
            }

        @app.post("/cgi-bin/externalcontact/groupchat/{verb}")
        async def groupchat(verb: str, access_token: str, request: Request) -> Any:
            body, name = await request.json(), f"groupchat/{verb}"
            self.calls.append(Call(access_token, name, body, time.monotonic()))
            if self.scripts.get(name):
                return self.scripts[name].pop(0)
            ok = {"errcode": 0, "errmsg": "ok"}
            if verb == "transfer":
                refused = [c for c in body["chat_id_list"] if self.refuse.get(c, 0) > 0]
                for chat in refused:
                    self.refuse[chat] -= 1
                failed = [{"chat_id": c, "errcode": 90500, "errmsg": "the owner has not resigned"}
                          for c in refused]  # fmt: skip
                return {**ok, "failed_chat_list": failed}
            if verb == "add_join_way":
                config_id = f"config-{len(self.join_ways) + 1}"
                self.join_ways[config_id] = body
                return {**ok, "config_id": config_id}
            if verb == "update_join_way" and body.get("config_id") in self.join_ways:
                self.join_ways[body["config_id"]] = body
                return ok
            if verb == "get_join_way" and body.get("config_id") in self.join_ways:
                way = self.join_ways[body["config_id"]]
                qr_code = f"https://wework.qpic.cn/wwpic/{body['config_id']}"
                return {**ok, "join_way": {**way, "config_id": body["config_id"],
                                           "qr_code": qr_code}}  # fmt: skip
            return {"errcode": 41044, "errmsg": "invalid config_id"}

        @app.post("/cgi-bin/message/send")
        async def message_send(access_token: str, request: Request) -> Any:
            body = await request.json()
            self.calls.append(Call(access_token, "message/send", body, time.monotonic()))
            return {"errcode": 0, "errmsg": "ok", "msgid": f"m{len(self.calls)}"}

        @app.post("/cgi-bin/externalcontact/group_welcome_template/{verb}")
        async def welcome_template(verb: str, access_token: str, request: Request) -> Any:
            body, name = await request.json(), f"group_welcome_template/{verb}"
            self.calls.append(Call(access_token, name, body, time.monotonic()))
            if self.scripts.get(name):
                return self.scripts[name].pop(0)
            if verb == "add":
                template_id = f"template-{len(self.templates) + 1}"
            elif verb == "edit" and body.get("template_id") in self.templates:
                template_id = body["template_id"]
            else:
                return {"errcode": 40003, "errmsg": "invalid template_id"}
            self.templates[template_id] = body["text"]["content"]
            answer = {"errcode": 0, "errmsg": "ok"}
            return {**answer, "template_id": template_id} if verb == "add" else answer

        @app.post("/cgi-bin/externalcontact/{name}")
        async def other(name: str, access_token: str, request: Request) -> dict[str, Any]:
            body = await request.json()
            self.calls.append(Call(access_token, name, body, time.monotonic()))
            if self.scripts.get(name):
                return self.scripts[name].pop(0)
            if name == "add_msg_template":
                return {
                    "errcode": 0,
                    "errmsg": "ok",
                    "fail_list": [],
                    "msgid": f"msg{len(self.calls)}",
                }
            return {"errcode": 40003, "errmsg": "invalid path"}

        return app


@dataclass
class FakePictureHost:
    """A stand-in for a platform's media server: pictures by name, every request counted.
    Names starting with "chunked" are sent without a Content-Length, "slow" ones after 0.5 s;
    names in `redirects` answer 302 to their URL."""

    url: str = ""
    pictures: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/{name}")
        async def picture(name: str) -> Response:
            self.requests.append(name)
            if name in self.redirects:
                return Response(status_code=302, headers={"location": self.redirects[name]})
            if name not in self.pictures:
                return Response(status_code=404)
            if name.startswith("slow"):
                await asyncio.sleep(0.5)
            if name.startswith("chunked"):
                return StreamingResponse(iter([self.pictures[name]]), media_type="image/png")
            return Response(self.pictures[name], media_type="image/png")

        return app


@contextlib.asynccontextmanager
async def serve_fake(fake: Any) -> AsyncIterator[Any]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.02)
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        await task
