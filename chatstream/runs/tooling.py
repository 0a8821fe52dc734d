"""Tool calls inside a run: parsing the model's input, running handlers concurrently, applying approvals."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import msgspec

from chatstream.errors import ConflictError
from chatstream.models import PendingToolCall, new_id
from chatstream.protocol.chunks import (
    DataStatus,
    ToolApprovalRequest,
    ToolOutputAvailable,
    ToolOutputDenied,
    ToolOutputError,
)
from chatstream.tools.base import Tool, ToolContext, ToolError, ToolInputError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from chatstream.models import ApprovalDecision, SuspendedRun
    from chatstream.runs.executor import Run

__all__ = ["ToolCall", "execute_tools", "request_approvals", "resolve_decisions"]

log = logging.getLogger("chatstream.tools")

_json = msgspec.json.Decoder()


class ToolCall(msgspec.Struct, kw_only=True):
    id: str
    name: str
    input: Any
    tool: Tool[Any] | None = None
    error: str | None = None

    @property
    def needs_approval(self) -> bool:
        return self.tool is not None and self.tool.needs_approval

    @classmethod
    def parse(cls, call_id: str, name: str, arguments: str, tools: Mapping[str, Tool[Any]]) -> ToolCall:
        """Decode and validate the model's arguments; problems become `error`, reported to the model.

        `tools` are the ones offered to this run: a registered tool the run was not offered (a web tool
        without `webSearch`, any tool for a reasoning model) is as unknown as one that does not exist.
        """
        try:
            raw = _json.decode(arguments or "{}")
        except msgspec.DecodeError:
            return cls(id=call_id, name=name, input=arguments, error="tool input is not valid JSON")
        tool = tools.get(name)
        if tool is None:
            return cls(id=call_id, name=name, input=raw, error=f"unknown tool {name!r}")
        try:
            tool.parse_input(raw)
        except ToolInputError as exc:
            return cls(id=call_id, name=name, input=raw, tool=tool, error=f"invalid input: {exc}")
        return cls(id=call_id, name=name, input=raw, tool=tool)


async def _run_one(run: Run, call: ToolCall) -> None:
    assert call.tool is not None
    ctx = ToolContext(
        user_id=run.spec.user_id,
        conversation_id=run.spec.conversation.id,
        run_id=run.spec.run_id,
        tool_call_id=call.id,
    )
    await run.emit(DataStatus(data={"status": "running", "tool": call.name, "toolCallId": call.id}))
    try:
        output = await call.tool.call(call.input, ctx)
        output = msgspec.to_builtins(output)
    except ToolInputError as exc:
        await _fail(run, call, f"invalid input: {exc}")
        return
    except ToolError as exc:  # an expected refusal: its message is written for the model as it is
        await _fail(run, call, str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - a tool's failure is the model's information, never the run's end
        log.warning("tool %s failed: %r", call.name, exc)
        await _fail(run, call, f"{type(exc).__name__}: {exc}")
        return
    run.builder.tool(call.id, call.name, state="output-available", input=call.input, output=output)
    await run.emit(ToolOutputAvailable(tool_call_id=call.id, output=output))


async def _fail(run: Run, call: ToolCall, text: str) -> None:
    run.builder.tool(call.id, call.name, state="output-error", input=call.input, error_text=text)
    await run.emit(ToolOutputError(tool_call_id=call.id, error_text=text))


async def execute_tools(run: Run, calls: Sequence[ToolCall]) -> None:
    """Run the calls concurrently (parallel tool calls); results are written as each finishes."""
    if calls:
        await asyncio.gather(*(_run_one(run, c) for c in calls))


async def request_approvals(run: Run, calls: Sequence[ToolCall]) -> None:
    """Ask a human about each call: its part waits in `approval-requested` and the run suspends after."""
    for call in calls:
        approval_id = new_id("apv-")
        run.pending.append(
            PendingToolCall(tool_call_id=call.id, tool_name=call.name, input=call.input, approval_id=approval_id)
        )
        run.builder.tool(call.id, call.name, state="approval-requested", approval={"id": approval_id})
        await run.emit(ToolApprovalRequest(approval_id=approval_id, tool_call_id=call.id))
        # The plain dialect has no approval event: its `status` is how such clients learn to ask.
        status = {"status": "awaiting-approval", "tool": call.name, "toolCallId": call.id, "approvalId": approval_id}
        await run.emit(DataStatus(data={**status, "runId": run.spec.run_id}))


async def resolve_decisions(run: Run, suspended: SuspendedRun, decisions: Sequence[ApprovalDecision]) -> list[ToolCall]:
    """Apply approval decisions to the pending calls: denied ones are reported, approved ones returned to run.

    A pending call without a decision counts as denied: the run cannot stay half-suspended.
    """
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
        tool = run.deps.tools.get(pending.tool_name)
        if ok and tool is None:
            raise ConflictError(f"tool {pending.tool_name!r} is no longer available")
        if ok:
            run.builder.tool(pending.tool_call_id, pending.tool_name, state="approval-responded", approval=approval)
            approved.append(ToolCall(id=pending.tool_call_id, name=pending.tool_name, input=pending.input, tool=tool))
        else:
            run.builder.tool(pending.tool_call_id, pending.tool_name, state="output-denied", approval=approval)
            await run.emit(ToolOutputDenied(tool_call_id=pending.tool_call_id))
    return approved
