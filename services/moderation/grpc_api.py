"""gRPC: `shequn.v1.ModerationService`, the same operations as the HTTP API."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from pydantic import ValidationError

from services.gen.shequn.v1 import moderation_pb2, moderation_pb2_grpc
from services.moderation.api import invalid_field, list_decisions
from services.moderation.detect.ruleset import Ruleset, merged
from services.moderation.rulesets import Rulesets
from services.runtime.auth import Authenticator, Role
from services.runtime.rpc import GrpcService, authenticate
from services.runtime.store import Store

Context = grpc.aio.ServicerContext[Any, Any]


def _struct(value: dict[str, Any]) -> Struct:
    found = Struct()
    found.update(value)
    return found


class ModerationServicer(moderation_pb2_grpc.ModerationServiceServicer):
    def __init__(self, store: Store, rulesets: Rulesets, auth: Authenticator) -> None:
        self.store, self.rulesets, self.auth = store, rulesets, auth

    async def GetRuleset(
        self, request: moderation_pb2.GetRulesetRequest, context: Context
    ) -> moderation_pb2.RulesetReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        return await self._reply(principal.tenant_id, request.group_id)

    async def PutRuleset(
        self, request: moderation_pb2.PutRulesetRequest, context: Context
    ) -> moderation_pb2.RulesetReply:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        body = json_format.MessageToDict(request.ruleset)
        try:
            if request.group_id:
                merged(await self.rulesets.tenant(principal.tenant_id), body)
                await self.rulesets.put_group(principal.tenant_id, request.group_id, body)
            else:
                await self.rulesets.put_tenant(principal.tenant_id, Ruleset.model_validate(body))
        except ValidationError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, invalid_field(exc)[1])
        return await self._reply(principal.tenant_id, request.group_id)

    async def ListDecisions(
        self, request: moderation_pb2.ListDecisionsRequest, context: Context
    ) -> moderation_pb2.ListDecisionsReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        if not 0 <= request.limit <= 500:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "limit: 1 to 500")
        found = await list_decisions(
            self.store,
            principal.tenant_id,
            request.group_id or None,
            request.member_id or None,
            request.rule or None,
            limit=request.limit or 100,
        )
        return moderation_pb2.ListDecisionsReply(decisions=[_struct(d) for d in found])

    async def _reply(self, tenant_id: str, group_id: str) -> moderation_pb2.RulesetReply:
        tenant = await self.rulesets.tenant(tenant_id)
        if not group_id:
            return moderation_pb2.RulesetReply(ruleset=_struct(tenant.model_dump()))
        override = await self.rulesets.override(tenant_id, group_id) or {}
        effective = merged(tenant, override)
        return moderation_pb2.RulesetReply(
            ruleset=_struct(effective.model_dump()), override=_struct(override)
        )


def service(store: Store, rulesets: Rulesets, auth: Authenticator) -> GrpcService:
    return GrpcService(
        ModerationServicer(store, rulesets, auth),
        moderation_pb2_grpc.add_ModerationServiceServicer_to_server,
        moderation_pb2.DESCRIPTOR.services_by_name["ModerationService"].full_name,
    )
