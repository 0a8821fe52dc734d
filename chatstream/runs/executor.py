"""One run: the model ↔ tools loop of one generation, written to the stream buffer as it happens.

A run owns its stream: every chunk goes through its `RunOutput`, which encodes it once, writes it to the
buffer and folds it into the answer; readers never talk to the run. Ending order matters (SPEC §7): the
assistant message is stored first, then the final frames are written, then the lease is released, so a
client that saw the end always finds the answer stored, and a reader that finds the lease gone without a
final frame knows the producer died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from chatstream.errors import AppError
from chatstream.models import FinishReason, Message, PendingToolCall, SuspendedRun, Usage
from chatstream.protocol.chunks import (
    Chunk,
    DataConversation,
    ErrorChunk,
    Finish,
    FinishStep,
    ReasoningDelta,
    ReasoningStart,
    Start,
    StartStep,
    TextDelta,
    TextStart,
    ToolInputAvailable,
    ToolInputDelta,
    ToolInputError,
    ToolInputStart,
)
from chatstream.providers.base import (
    ModelFinish,
    ModelReasoning,
    ModelReasoningEnd,
    ModelReasoningSignature,
    ModelText,
    ModelToolCall,
    ModelToolCallDelta,
    ModelToolCallStart,
    ModelUsage,
    ProviderRequest,
)
from chatstream.runs.approval import request_approvals, resume_calls, split_approvals
from chatstream.runs.output import RunOutput
from chatstream.runs.persist import log_run_end, until_stored
from chatstream.runs.plan import RunDeps, RunPlan, RunSpec
from chatstream.runs.tooling import ToolCall, execute_tools

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from chatstream.runs.leases import KeptRun

# `RunDeps` and `RunSpec` live in `plan` (no import cycles); they are re-exported where they always were.
__all__ = ["Run", "RunDeps", "RunSpec"]

log = logging.getLogger("chatstream.runs")

EndCause = Literal["done", "stopped", "timeout", "max_steps", "suspended", "error"]


class Run:
    """Executes one `RunPlan`. `execute()` never raises: every outcome ends the stream."""

    def __init__(
        self,
        deps: RunDeps,
        plan: RunPlan,
        *,
        keep: Callable[[], KeptRun] | None = None,
        on_end: Callable[[Usage | None], Awaitable[None]] | None = None,
    ) -> None:
        self.deps = deps
        self.spec = spec = plan.spec
        self.provider = plan.provider
        self._title = plan.title
        self._resume = plan.resume
        self._decisions = plan.decisions
        # Called when the run starts: the process's `LeaseKeeper` renews its leases until `_beat.cancel()`.
        self._keep = keep
        self._on_end = on_end
        self.out = RunOutput(
            deps.buffer,
            spec.conversation.id,
            spec.message_id,
            base=plan.base,
            batched=deps.batched,
            window=deps.settings.coalesce_ms / 1000,
        )
        self.step = spec.step
        self.finish_reason: FinishReason = "stop"
        # The finish the model reported before its stream failed (OpenRouter sends `length`, then an error):
        # the stored message keeps it next to the error rather than a bare "error".
        self._finish_before_error: FinishReason | None = None
        self.pending: list[PendingToolCall] = []
        self._started = time.monotonic()
        self._seen_token = False
        # A new conversation's history is its first message: no need to read it back.
        self._history: list[Message] | None = (
            [plan.user_message] if plan.new and plan.user_message is not None else None
        )
        self._local_stop: asyncio.Future[None] | None = None
        self._stop_wanted = False
        self._shutdown = False
        self._beat: KeptRun | None = None

    def request_stop(self, *, shutdown: bool = False) -> None:
        """Stop this run like a user stop, from its own process: needs no backend (Redis may be gone at
        shutdown). `shutdown` is what the final frame's `endedBy` says."""
        self._stop_wanted = True
        self._shutdown = self._shutdown or shutdown
        if self._local_stop is not None and not self._local_stop.done():
            self._local_stop.set_result(None)

    # -- lifecycle --------------------------------------------------------------------------------------

    async def execute(self) -> None:
        spec, settings = self.spec, self.deps.settings
        self._started = time.monotonic()
        heartbeat = self._keep() if self._keep is not None else None
        title_task = asyncio.create_task(self._title()) if self._title else None
        cause: EndCause = "error"
        error: AppError | None = None
        try:
            await self.out.write(
                Start(
                    message_id=spec.message_id,
                    message_metadata={
                        "conversationId": spec.conversation.id,
                        "runId": spec.run_id,
                        "provider": spec.provider,
                        "model": spec.model,
                    },
                )
            )
            await self.out.write(
                DataConversation(data={"conversationId": spec.conversation.id, "title": spec.conversation.title})
            )
            cause = await self._race(self._work(), settings.run_timeout_seconds)
        except AppError as exc:
            error = exc
        except Exception as exc:  # top of the producer task: anything unexpected ends the stream cleanly
            log.exception("run %s failed", spec.run_id)
            error = AppError(f"internal error: {type(exc).__name__}")
        except BaseException:  # cancelled (a shutdown that could wait no longer): nothing left to end
            if heartbeat is not None:
                heartbeat.cancel()
            raise
        # The heartbeat beats on until the end is stored: that may wait for Redis to come back, and until
        # then this run must not look dead to readers elsewhere (they would store a partial answer).
        self._beat = heartbeat
        await self._end(cause, error, title_task)

    async def _race(self, work: Awaitable[EndCause], limit: float) -> EndCause:
        """Run the work until it ends, a stop is requested (any instance), or the run's time is up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        task = asyncio.ensure_future(work)
        stop = asyncio.create_task(self.deps.registry.wait_stop(self.spec.run_id))
        # A plain future, not another task: what `request_stop` resolves (shutdown, no backend needed).
        local = self._local_stop = loop.create_future()
        if self._stop_wanted:
            local.set_result(None)
        try:
            while True:
                waiting = {task, local} if stop.done() else {task, stop, local}
                done, _ = await asyncio.wait(
                    waiting, timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
                )
                if task in done:
                    return task.result()
                if not done:
                    cause: EndCause = "timeout"
                    break
                if local in done or stop.exception() is None:
                    cause = "stopped"
                    break
                # The stop signal failed (its backend went away): that is no reason to end the answer.
                log.warning("stop signal unavailable for run %s: %r", self.spec.run_id, stop.exception())
        finally:
            stop.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if not task.cancelled() and task.exception() is None:
            return task.result()  # finished in the same instant
        return cause

    def _first_token(self) -> None:
        """Called when a text or reasoning part opens (not per token); records the run's first one."""
        if not self._seen_token:
            self._seen_token = True
            self.deps.metrics.first_token.observe(time.monotonic() - self._started)

    async def _end(self, cause: EndCause, error: AppError | None, title_task: asyncio.Task[str] | None) -> None:
        spec, deps, out = self.spec, self.deps, self.out
        deps.metrics.runs_ended[cause] += 1
        deps.metrics.tokens["input"] += out.usage.input_tokens
        deps.metrics.tokens["output"] += out.usage.output_tokens
        reason: FinishReason = {
            "done": self.finish_reason,
            "stopped": "interrupted",
            "timeout": "other",
            "max_steps": "tool-calls",
            "suspended": "tool-calls",
            "error": self._finish_before_error or "error",
        }[cause]
        # A run cut short (error, stop, timeout) still closes its step, so the stream stays well formed. (Its
        # open text or reasoning part was closed by `_model_step` on its way out.)
        final: list[Chunk] = out.closing_chunks()
        try:
            title = await self._wait_title(title_task)
            if title is not None:
                final.append(DataConversation(data={"conversationId": spec.conversation.id, "title": title}))
            message = out.message(
                provider=spec.provider,
                model=spec.model,
                finish_reason=reason,
                error=error.message if error else None,
                run_id=spec.run_id,
            )
            # One read-modify-write of the conversation for everything the run learned about it.
            changes: dict[str, Any] = {}
            if title is not None:
                changes["title"] = title
            if cause == "suspended":
                changes["pending_run_id"] = spec.run_id

            async def persist() -> None:
                # Every write replaces by id, so a retry after a half-done attempt repeats it harmlessly.
                await deps.store.save_message(message)
                if cause == "suspended":
                    await deps.store.save_suspended_run(
                        SuspendedRun(
                            run_id=spec.run_id,
                            conversation_id=spec.conversation.id,
                            user_id=spec.user_id,
                            message_id=spec.message_id,
                            pending=tuple(self.pending),
                            step=self.step,
                            provider=spec.provider,
                            model=spec.model,
                            mood=spec.mood,
                            web_search=spec.web_search,
                        )
                    )
                if changes:
                    conversation = await deps.store.get_conversation(spec.conversation.id)
                    if conversation is not None:
                        await deps.store.put_conversation(msgspec.structs.replace(conversation, **changes))

            # Stored before the final frames (SPEC §7): a client that saw the end finds the answer.
            await until_stored(persist, what="answer", run_id=spec.run_id, seconds=deps.settings.store_retry_seconds)
            if error is not None:
                final.append(ErrorChunk(error_text=error.message))
            else:
                metadata: dict[str, Any] = {
                    "conversationId": spec.conversation.id,
                    "runId": spec.run_id,
                    "provider": spec.provider,
                    "model": spec.model,
                    "usage": msgspec.to_builtins(out.usage),
                }
                if cause in ("timeout", "max_steps", "stopped"):
                    metadata["endedBy"] = "shutdown" if cause == "stopped" and self._shutdown else cause
                final.append(Finish(finish_reason=reason, message_metadata=metadata))
            await out.close(final, run_id=spec.run_id, seconds=deps.settings.store_retry_seconds)
        except AppError:
            log.exception("run %s could not be finalised", spec.run_id)
        finally:
            if self._beat is not None:
                self._beat.cancel()  # before the release: no beat may refresh a lease or a slot given up
            with contextlib.suppress(AppError):
                await deps.registry.release(spec.conversation.id, spec.run_id)
            if self._on_end is not None:
                try:
                    await self._on_end(out.usage)
                except AppError as exc:
                    log.warning("run %s could not settle its limits: %s", spec.run_id, exc.message)
            log_run_end(
                run=spec.run_id,
                thread=spec.conversation.id,
                user=spec.user_id,
                provider=spec.provider,
                model=spec.model,
                finish_reason=reason,
                output_tokens=out.usage.output_tokens,
                duration_ms=(time.monotonic() - self._started) * 1000,
            )

    async def _wait_title(self, task: asyncio.Task[str] | None) -> str | None:
        if task is None:
            return None
        try:
            return await asyncio.wait_for(task, timeout=5.0)
        except (TimeoutError, AppError):
            return None

    # -- the loop ---------------------------------------------------------------------------------------

    async def _work(self) -> EndCause:
        spec, deps, out = self.spec, self.deps, self.out
        if self._resume is not None:
            calls = await resume_calls(out, deps.tools, self._resume, self._decisions)
            await execute_tools(out, spec, calls)
        max_steps = deps.settings.max_steps
        while True:
            if self.step >= max_steps:
                return "max_steps"
            self.step += 1
            calls = await self._model_step()
            if not calls:
                await out.write(FinishStep())
                return "done"
            now, ask = split_approvals([c for c in calls if c.error is None], deps.settings.approval_tools)
            await execute_tools(out, spec, now)
            if ask:
                self.pending.extend(await request_approvals(out, spec.run_id, ask))
                await out.write(FinishStep())
                return "suspended"
            await out.write(FinishStep())

    async def _model_step(self) -> list[ToolCall]:
        """One model call: stream its text, reasoning and tool calls; return the calls to execute."""
        spec, deps, out = self.spec, self.deps, self.out
        await out.write(StartStep())
        if self._history is None:
            # Read once per run: during it the conversation only changes by the message this run builds.
            stored = await deps.store.list_messages(spec.conversation.id)
            self._history = [m for m in stored if m.id != spec.message_id]
        history = [*self._history, out.message()]
        offered = deps.tools.offered(web=spec.web_search) if spec.tools_enabled else []
        request = ProviderRequest(
            model=spec.model,
            messages=tuple(history),
            system=deps.system_prompt(spec.mood, spec.web_search),
            tools=tuple(t.spec for t in offered),
        )
        offered_by_name = {t.name: t for t in offered}
        calls: list[ToolCall] = []
        write = out.write
        # Part ids only need to be unique within the message; short ones keep every delta frame small.
        part_ids = (f"{self.step}-{n}" for n in range(1_000_000))
        # Which text or reasoning part is open is the output's to know (`text_id`, `reasoning_id`): opening
        # one ends the other (`end_part`), and so does a tool call.
        try:
            async for event in self.provider.stream(request):
                match event:
                    case ModelText(text=text):
                        part_id = out.text_id
                        if part_id is None:
                            self._first_token()
                            await out.end_part()
                            part_id = f"t{next(part_ids)}"
                            await write(TextStart(id=part_id))
                        await write(TextDelta(id=part_id, delta=text))
                    case ModelReasoning(text=text):
                        part_id = out.reasoning_id
                        if part_id is None:
                            self._first_token()
                            await out.end_part()
                            part_id = f"r{next(part_ids)}"
                            await write(ReasoningStart(id=part_id))
                        await write(ReasoningDelta(id=part_id, delta=text))
                    case ModelReasoningSignature(signature=signature, redacted=redacted):
                        if out.reasoning_id is None:  # a redacted block has no text: it opens its part here
                            self._first_token()
                            await out.end_part()
                            await write(ReasoningStart(id=f"r{next(part_ids)}"))
                        key = "redactedData" if redacted else "signature"
                        out.reasoning_metadata({"anthropic": {key: signature}})
                    case ModelReasoningEnd():
                        if out.reasoning_id is not None:
                            await out.end_part()  # the next block is a part of its own, with its own metadata
                    case ModelToolCallStart(id=call_id, name=name):
                        await out.end_part()
                        await write(ToolInputStart(tool_call_id=call_id, tool_name=name))
                    case ModelToolCallDelta(id=call_id, delta=delta):
                        await write(ToolInputDelta(tool_call_id=call_id, input_text_delta=delta))
                    case ModelToolCall(id=call_id, name=name, arguments=arguments):
                        await out.end_part()
                        call = ToolCall.parse(call_id, name, arguments, offered_by_name)
                        if call.error is not None:
                            await write(
                                ToolInputError(
                                    tool_call_id=call_id, tool_name=name, input=call.input, error_text=call.error
                                )
                            )
                        else:
                            await write(ToolInputAvailable(tool_call_id=call_id, tool_name=name, input=call.input))
                        calls.append(call)
                    case ModelUsage(usage=usage):
                        out.add_usage(usage)
                    case ModelFinish(reason=reason):
                        self.finish_reason = self._finish_before_error = reason
        finally:
            with contextlib.suppress(AppError):
                await out.end_part()
        self._finish_before_error = None  # the stream ended cleanly: a later error is not the model's
        # Calls with invalid input come back too: their error is the result the model sees next step.
        return calls
