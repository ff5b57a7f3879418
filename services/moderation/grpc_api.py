"""gRPC: `shequn.v1.ModerationService`, the same operations as the HTTP API."""

from __future__ import annotations

from google.protobuf import json_format
from pydantic import ValidationError

from services.gen.shequn.v1 import moderation_pb2 as pb
from services.gen.shequn.v1 import moderation_pb2_grpc
from services.moderation.detect.ruleset import Ruleset
from services.moderation.operations import Operations
from services.moderation.rulesets import Rulesets
from services.runtime.auth import Authenticator, Role
from services.runtime.overrides import merged
from services.runtime.refusals import invalid
from services.runtime.rpc import (
    Context,
    GrpcService,
    answers_refusals,
    authenticate,
    struct_of,
)
from services.runtime.wellformed import key_part


def _group_id(group_id: str) -> None:
    """A group's id, when one is given, follows the id rule (none: the tenant's ruleset)."""
    if group_id:
        key_part("group_id", group_id)


class ModerationServicer(moderation_pb2_grpc.ModerationServiceServicer):
    def __init__(self, rulesets: Rulesets, ops: Operations, auth: Authenticator) -> None:
        self.rulesets, self.ops, self.auth = rulesets, ops, auth

    @answers_refusals
    async def GetRuleset(self, request: pb.GetRulesetRequest, context: Context) -> pb.RulesetReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        _group_id(request.group_id)
        return await self._reply(principal.tenant_id, request.group_id)

    @answers_refusals
    async def PutRuleset(self, request: pb.PutRulesetRequest, context: Context) -> pb.RulesetReply:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        _group_id(request.group_id)
        body = json_format.MessageToDict(request.ruleset)
        try:
            if request.group_id:
                merged(await self.rulesets.tenant(principal.tenant_id), body)
                await self.rulesets.put_group(principal.tenant_id, request.group_id, body)
            else:
                await self.rulesets.put_tenant(principal.tenant_id, Ruleset.model_validate(body))
        except ValidationError as exc:
            raise invalid(exc.errors()) from None
        return await self._reply(principal.tenant_id, request.group_id)

    @answers_refusals
    async def ListDecisions(
        self, request: pb.ListDecisionsRequest, context: Context
    ) -> pb.ListDecisionsReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.ops.list_decisions(
            principal.tenant_id,
            request.group_id or None,
            request.member_id or None,
            request.rule or None,
            limit=request.limit or 100,
        )
        return pb.ListDecisionsReply(decisions=[struct_of(d) for d in found])

    @answers_refusals
    async def AppealDecision(
        self, request: pb.AppealDecisionRequest, context: Context
    ) -> pb.AppealDecisionReply:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        found = await self.ops.appeal(principal, request.decision_id, request.reason)
        return pb.AppealDecisionReply(
            decision_id=request.decision_id, appeal=struct_of(found["appeal"])
        )

    @answers_refusals
    async def ListBlacklist(
        self, request: pb.ListBlacklistRequest, context: Context
    ) -> pb.ListBlacklistReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.ops.blacklist(principal.tenant_id)
        return pb.ListBlacklistReply(members=[struct_of(m) for m in found])

    @answers_refusals
    async def AddToBlacklist(
        self, request: pb.AddToBlacklistRequest, context: Context
    ) -> pb.BlacklistEntryReply:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        entry = await self.ops.add_to_blacklist(
            principal.tenant_id, request.member_id, request.reason
        )
        return pb.BlacklistEntryReply(entry=struct_of(entry))

    @answers_refusals
    async def Unban(self, request: pb.UnbanRequest, context: Context) -> pb.UnbanReply:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        done = await self.ops.unban(principal.tenant_id, request.member_id)
        return pb.UnbanReply(member_id=request.member_id, groups_told=done["groups_told"])

    @answers_refusals
    async def PlanDedupe(
        self, request: pb.PlanDedupeRequest, context: Context
    ) -> pb.DedupePlanReply:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        return pb.DedupePlanReply(
            plan=struct_of(await self.ops.plan_dedupe(principal, request.series))
        )

    @answers_refusals
    async def GetDedupePlan(
        self, request: pb.GetDedupePlanRequest, context: Context
    ) -> pb.DedupePlanReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.ops.dedupe_plan(principal.tenant_id, request.plan_id)
        return pb.DedupePlanReply(plan=struct_of(found))

    @answers_refusals
    async def ApplyDedupePlan(
        self, request: pb.ApplyDedupePlanRequest, context: Context
    ) -> pb.DedupePlanReply:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        found = await self.ops.apply_dedupe(principal, request.plan_id)
        return pb.DedupePlanReply(plan=struct_of(found))

    async def _reply(self, tenant_id: str, group_id: str) -> pb.RulesetReply:
        tenant = await self.rulesets.tenant(tenant_id)
        if not group_id:
            return pb.RulesetReply(ruleset=struct_of(tenant.model_dump()))
        override = await self.rulesets.override(tenant_id, group_id) or {}
        effective = merged(tenant, override)
        return pb.RulesetReply(
            ruleset=struct_of(effective.model_dump()), override=struct_of(override)
        )


def service(rulesets: Rulesets, ops: Operations, auth: Authenticator) -> GrpcService:
    return GrpcService(
        ModerationServicer(rulesets, ops, auth),
        moderation_pb2_grpc.add_ModerationServiceServicer_to_server,
        pb.DESCRIPTOR.services_by_name["ModerationService"].full_name,
    )
