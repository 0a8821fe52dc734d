"""Tool approvals, the whole life of one: requested, decided, superseded, resumed.

A run that meets a call needing approval asks (`request_approvals`: the part waits in `approval-requested`)
and suspends: its answer is stored with a `SuspendedRun` holding the rest of its state, and the
conversation names it as pending. A decision arrives on any instance (`Approvals.resume`): once the
suspending run has let go of the conversation, the decision is claimed exactly once and a new run
continues the same answer (`resume_calls`: denied calls are reported, approved ones run). A new message
sent meanwhile supersedes the wait (`Approvals.supersede`): the waiting calls count as denied.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec

from chatstream.errors import ConflictError, NotFoundError
from chatstream.models import PendingToolCall, new_id
from chatstream.protocol.chunks import DataStatus, ToolApprovalRequest, ToolInputAvailable, ToolOutputDenied
from chatstream.providers.registry import is_reasoning_model
from chatstream.runs.assembly import MessageBuilder
from chatstream.runs.plan import RunPlan, RunSpec
from chatstream.runs.tooling import ToolCall

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chatstream.models import ApprovalDecision, Conversation, Principal, SuspendedRun
    from chatstream.providers.registry import ProviderRegistry
    from chatstream.runs.output import RunOutput
    from chatstream.runs.plan import RunDeps
    from chatstream.tools.base import ToolRegistry

__all__ = ["Approvals", "request_approvals", "resume_calls", "split_approvals"]

MARK_TTL = 24 * 3600.0
"""How long a run's `decided`/`superseded` mark is kept, so a late decision still gets its 409."""
RELEASE_WAIT = 10.0
"""How long an approval waits for the suspending run to let go (it may settle a title for up to 5 s)."""


# -- inside a run ---------------------------------------------------------------------------------------


def split_approvals(calls: Sequence[ToolCall], approval_tools: Sequence[str]) -> tuple[list[ToolCall], list[ToolCall]]:
    """The calls to run now, and those that wait for a human. An operator can require approval for any
    tool, built-ins included (`approval_tools`, from CHAT_APPROVAL_TOOLS)."""
    now: list[ToolCall] = []
    ask: list[ToolCall] = []
    for call in calls:
        (ask if call.needs_approval or call.name in approval_tools else now).append(call)
    return now, ask


async def request_approvals(out: RunOutput, run_id: str, calls: Sequence[ToolCall]) -> list[PendingToolCall]:
    """Ask a human about each call: its part waits in `approval-requested`, and the run suspends after
    with the returned calls pending."""
    pending: list[PendingToolCall] = []
    for call in calls:
        approval_id = new_id("apv-")
        pending.append(
            PendingToolCall(tool_call_id=call.id, tool_name=call.name, input=call.input, approval_id=approval_id)
        )
        await out.write(ToolApprovalRequest(approval_id=approval_id, tool_call_id=call.id))
        # The plain dialect has no approval event: its `status` is how such clients learn to ask.
        status = {"status": "awaiting-approval", "tool": call.name, "toolCallId": call.id, "approvalId": approval_id}
        await out.write(DataStatus(data={**status, "runId": run_id}))
    return pending


async def resume_calls(
    out: RunOutput, tools: ToolRegistry, suspended: SuspendedRun, decisions: Sequence[ApprovalDecision]
) -> list[ToolCall]:
    """Continue a suspended run's step with the decisions: denied calls are reported, approved ones are
    returned to be run.

    The decisions finish the step that made the calls, as the AI SDK's own server does: no new step
    around them. Each call is declared again first: a live client updates its part in place (it is in the
    current step), and a client replaying this stream from `start` (which resets the message) learns the
    call before its output, instead of failing on an unknown id. A pending call without a decision counts
    as denied: the run cannot stay half-suspended.
    """
    for call in suspended.pending:
        await out.write(ToolInputAvailable(tool_call_id=call.tool_call_id, tool_name=call.tool_name, input=call.input))
    approved: list[ToolCall] = []
    for pending in suspended.pending:
        decision = next(
            (
                d
                for d in decisions
                if d.tool_call_id in (None, pending.tool_call_id)
                or (d.approval_id is not None and d.approval_id == pending.approval_id)
            ),
            None,
        )
        ok = decision is not None and decision.approved
        approval = {"id": pending.approval_id, "approved": ok}
        if decision is not None and decision.reason:
            approval["reason"] = decision.reason
        tool = tools.get(pending.tool_name)
        if ok and tool is None:
            raise ConflictError(f"tool {pending.tool_name!r} is no longer available")
        out.record_decision(pending.tool_call_id, pending.tool_name, approval)
        if ok:
            approved.append(ToolCall(id=pending.tool_call_id, name=pending.tool_name, input=pending.input, tool=tool))
        else:
            await out.write(ToolOutputDenied(tool_call_id=pending.tool_call_id))
    return approved


# -- between runs ---------------------------------------------------------------------------------------


class Approvals:
    """Deciding runs suspended for approval, on any instance: each is decided once (409 after), by its
    owner's decision (`resume`) or by a new message in its conversation (`supersede`).

    Admission stays with `RunService`: it checks ownership and draining first, and launches the plan
    `resume` returns.
    """

    def __init__(self, deps: RunDeps, providers: ProviderRegistry) -> None:
        self.deps = deps
        self.providers = providers

    async def resume(
        self,
        principal: Principal,
        conversation: Conversation,
        run_id: str,
        decisions: Sequence[ApprovalDecision],
    ) -> RunPlan:
        """The run that continues `run_id` with `decisions`; the decision is claimed when it launches
        (`RunPlan.before_start`), once the conversation is held."""
        store, registry = self.deps.store, self.deps.registry
        conversation_id = conversation.id
        await self._until_released(conversation_id, run_id)
        suspended = await store.get_suspended_run(run_id)
        if suspended is None:
            # The run has ended (waited for above), so this mark cannot pre-empt a suspension still to come.
            if await registry.claim_idempotency(f"approval:{run_id}", "decided", ttl=MARK_TTL):
                raise ConflictError("this approval was already decided", code="already_decided")
            raise NotFoundError("no pending approval for this run")
        if suspended.conversation_id != conversation_id:
            raise NotFoundError("no pending approval for this run in this thread")
        pending = {p.tool_call_id for p in suspended.pending}
        unknown = [d.tool_call_id for d in decisions if d.tool_call_id is not None and d.tool_call_id not in pending]
        if unknown:
            # A mistyped id must not silently deny every pending call.
            raise NotFoundError(f"no pending approval for tool call {unknown[0]!r}")
        provider, model = self.providers.resolve(suspended.provider, suspended.model)
        # The stored answer so far: the continuation carries on its parts, and its usage covers both halves.
        message = await store.get_message(conversation_id, suspended.message_id)
        spec = RunSpec(
            run_id=new_id("run-"),
            conversation=conversation,
            user_id=principal.user_id,
            provider=provider.name,
            model=model,
            message_id=suspended.message_id,
            mood=suspended.mood,
            web_search=suspended.web_search,
            tools_enabled=not is_reasoning_model(model),
            step=suspended.step,
            workflow=suspended.workflow,
        )

        async def claim() -> None:
            # Claimed only once the conversation is ours to run: a 409 for a busy thread must not burn it.
            if await registry.claim_idempotency(f"approval:{run_id}", "decided", ttl=MARK_TTL):
                raise ConflictError("this approval was already decided", code="already_decided")
            if await store.take_suspended_run(run_id) is None:
                raise ConflictError("this approval was already decided", code="already_decided")
            await self.clear_pending(conversation_id, run_id)

        return RunPlan(
            spec=spec,
            provider=provider,
            resume=suspended,
            decisions=decisions,
            base=message,
            before_start=claim,
        )

    async def run_of_message(
        self, conversation: Conversation, message_id: str | None, decisions: Sequence[ApprovalDecision]
    ) -> str:
        """The AI SDK way: the client resends the messages with `approval-responded` tool parts. Returns
        the suspended run those decisions are for."""
        store = self.deps.store
        message = await store.get_message(conversation.id, message_id) if message_id else None
        if message is None:
            # Fall back to the most recent assistant message of the conversation.
            recent = [m for m in await store.list_messages(conversation.id, limit=20) if m.role == "assistant"]
            message = recent[-1] if recent else None
        if message is None or message.run_id is None:
            raise NotFoundError("no pending approval for this conversation")
        named = {d.tool_call_id for d in decisions if d.tool_call_id}
        parts = [p for p in message.parts if p.tool_call_id in named]
        if parts and all(p.state != "approval-requested" for p in parts):
            # A resent decision: the stored message already moved on (and names the continuation's run).
            raise ConflictError("this approval was already decided", code="already_decided")
        return message.run_id

    async def supersede(self, conversation_id: str, run_id: str) -> None:
        """A new message while a run waits for approval: the waiting calls count as denied, so the history
        the model sees next has a result for every tool call, and a late decision gets 409."""
        store = self.deps.store
        await self.deps.registry.claim_idempotency(f"approval:{run_id}", "superseded", ttl=MARK_TTL)
        suspended = await store.take_suspended_run(run_id)
        if suspended is not None:
            message = await store.get_message(conversation_id, suspended.message_id)
            if message is not None:
                # No stream carries this (the suspended run's ended long ago): the stored parts change alone.
                builder = MessageBuilder(message.id, conversation_id, message.parts)
                for call in suspended.pending:
                    builder.tool(
                        call.tool_call_id,
                        call.tool_name,
                        state="output-denied",
                        approval={"id": call.approval_id, "approved": False, "reason": "superseded by a new message"},
                    )
                await store.save_message(msgspec.structs.replace(message, parts=tuple(builder.parts)))
        await self.clear_pending(conversation_id, run_id)

    async def clear_pending(self, conversation_id: str, run_id: str) -> None:
        """The conversation no longer waits for `run_id`."""
        conversation = await self.deps.store.get_conversation(conversation_id)
        if conversation is not None and conversation.pending_run_id == run_id:
            await self.deps.store.put_conversation(msgspec.structs.replace(conversation, pending_run_id=None))

    async def _until_released(self, conversation_id: str, run_id: str) -> None:
        """Wait while `run_id` still holds the conversation. A suspending run stores its state, writes its
        last frames and only then lets go, so a quick client (or one on another instance) can ask in
        between; and a run that has not suspended yet cannot be decided."""
        registry = self.deps.registry
        deadline = asyncio.get_running_loop().time() + RELEASE_WAIT
        while await registry.active(conversation_id) == run_id:
            if asyncio.get_running_loop().time() >= deadline:
                raise ConflictError("this run is still generating; decide once it asks", code="run_active")
            await asyncio.sleep(0.05)
