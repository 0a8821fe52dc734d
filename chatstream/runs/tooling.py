"""Tool calls inside a run: parsing the model's input, running the handlers concurrently, writing each result
and the pages it cites (`source-url` parts, once per URL per answer).

Which calls wait for a human first, and what their decisions do, is `chatstream.runs.approval`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import msgspec

from chatstream.protocol.chunks import DataStatus, ToolOutputAvailable, ToolOutputError
from chatstream.tools.base import Source, Tool, ToolContext, ToolError, ToolInputError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from chatstream.runs.output import RunOutput
    from chatstream.runs.plan import RunSpec
    from chatstream.tools.base import ToolRun

__all__ = ["ToolCall", "execute_tools"]

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


async def _run_one(out: RunOutput, spec: RunSpec, call: ToolCall, run: ToolRun | None) -> None:
    assert call.tool is not None
    ctx = ToolContext(
        user_id=spec.user_id,
        conversation_id=spec.conversation.id,
        run_id=spec.run_id,
        tool_call_id=call.id,
        run=run,
    )
    await out.write(DataStatus(data={"status": "running", "tool": call.name, "toolCallId": call.id}))
    try:
        output = await call.tool.call(call.input, ctx)
        output = msgspec.to_builtins(output)
    except ToolInputError as exc:
        await _fail(out, call, f"invalid input: {exc}")
        return
    except ToolError as exc:  # an expected refusal: its message is written for the model as it is
        await _fail(out, call, str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - a tool's failure is the model's information, never the run's end
        log.warning("tool %s failed: %r", call.name, exc)
        await _fail(out, call, f"{type(exc).__name__}: {exc}")
        return
    await out.write(ToolOutputAvailable(tool_call_id=call.id, output=output))
    for source in _sources(call.tool, output):
        await out.cite(source.url, source.title)


def _sources(tool: Tool[Any], output: Any) -> list[Source]:
    """The web pages `output` cites. Only http(s) URLs: a citation is a link the client renders."""
    try:
        sources = tool.sources(output)
    except Exception as exc:  # noqa: BLE001 - a host's extractor failing costs the citations, not the answer
        log.warning("tool %s: could not read the sources of its output: %r", tool.name, exc)
        return []
    return [s for s in sources if s.url.startswith(("https://", "http://"))]


async def _fail(out: RunOutput, call: ToolCall, text: str) -> None:
    await out.write(ToolOutputError(tool_call_id=call.id, error_text=text))


async def execute_tools(
    out: RunOutput, spec: RunSpec, calls: Sequence[ToolCall], *, run: ToolRun | None = None
) -> None:
    """Run the calls of `spec`'s run concurrently (parallel tool calls); each result is written as it
    finishes. Every call's part is in the message already (its input was written before). `run` is what
    the handlers reach of the run (`ToolContext.run`)."""
    if calls:
        await asyncio.gather(*(_run_one(out, spec, c, run) for c in calls))
