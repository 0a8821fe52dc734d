"""One run: the model ↔ tools loop of one generation, written to the stream buffer as it happens.

A run owns its stream: every chunk is encoded once and written to the buffer; readers never talk to the
run. Ending order matters (SPEC §7): the assistant message is stored first, then the final frames are
written, then the lease is released, so a client that saw the end always finds the answer stored, and a
reader that finds the lease gone without a final frame knows the producer died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from chatstream.errors import AppError
from chatstream.metrics import Metrics
from chatstream.models import (
    ApprovalDecision,
    Conversation,
    FinishReason,
    Message,
    Mood,
    PendingToolCall,
    SuspendedRun,
    Usage,
)
from chatstream.protocol.chunks import (
    Chunk,
    DataConversation,
    ErrorChunk,
    Finish,
    FinishStep,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    Start,
    StartStep,
    TextDelta,
    TextEnd,
    TextStart,
    ToolInputAvailable,
    ToolInputDelta,
    ToolInputError,
    ToolInputStart,
    encode_chunk,
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
from chatstream.runs.assembly import MessageBuilder
from chatstream.runs.persist import close_stream, log_run_end, until_stored
from chatstream.runs.registry import RunRegistry
from chatstream.runs.tooling import ToolCall, execute_tools, request_approvals, resolve_decisions
from chatstream.settings import Settings
from chatstream.store.base import ConversationStore
from chatstream.streams.base import StreamBuffer
from chatstream.streams.producer import StreamWriter
from chatstream.tools.base import ToolRegistry

if TYPE_CHECKING:
    from chatstream.providers.base import Provider
    from chatstream.runs.leases import KeptRun

__all__ = ["Run", "RunDeps", "RunSpec"]

log = logging.getLogger("chatstream.runs")

EndCause = Literal["done", "stopped", "timeout", "max_steps", "suspended", "error"]


class RunDeps(msgspec.Struct, kw_only=True):
    """The shared services a run uses (one set per app)."""

    settings: Settings
    buffer: StreamBuffer
    batched: bool
    store: ConversationStore
    registry: RunRegistry
    tools: ToolRegistry
    system_prompt: Callable[[str, bool], str | None]
    metrics: Metrics = msgspec.field(default_factory=Metrics)


class RunSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What to run: who, where, with which model."""

    run_id: str
    conversation: Conversation
    user_id: str
    provider: str
    model: str
    message_id: str
    mood: Mood = "normal"
    web_search: bool = False
    tools_enabled: bool = True
    step: int = 0
    """Steps already taken (a resumed run continues counting)."""


class Run:
    """Executes one `RunSpec`. `execute()` never raises: every outcome ends the stream."""

    def __init__(
        self,
        deps: RunDeps,
        spec: RunSpec,
        provider: Provider,
        *,
        title: Callable[[], Coroutine[Any, Any, str]] | None = None,
        resume: tuple[SuspendedRun, Sequence[ApprovalDecision]] | None = None,
        existing: MessageBuilder | None = None,
        keep: Callable[[], KeptRun] | None = None,
        on_end: Callable[[Usage | None], Awaitable[None]] | None = None,
        history: list[Message] | None = None,
    ) -> None:
        self.deps = deps
        self.spec = spec
        self.provider = provider
        self._title = title
        self._resume = resume
        # Called when the run starts: the process's `LeaseKeeper` renews its leases until `_beat.cancel()`.
        self._keep = keep
        self._on_end = on_end
        self.builder = existing or MessageBuilder(spec.message_id, spec.conversation.id)
        self.writer = StreamWriter(
            deps.buffer, spec.conversation.id, batched=deps.batched, window=deps.settings.coalesce_ms / 1000
        )
        self.step = spec.step
        self.finish_reason: FinishReason = "stop"
        # The finish the model reported before its stream failed (OpenRouter sends `length`, then an error):
        # the stored message keeps it next to the error rather than a bare "error".
        self._finish_before_error: FinishReason | None = None
        self.pending: list[PendingToolCall] = []
        self._step_open = False
        self._started = time.monotonic()
        self._seen_token = False
        self._history = history
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

    async def emit(self, chunk: Chunk) -> None:
        if isinstance(chunk, StartStep | FinishStep):
            self._step_open = isinstance(chunk, StartStep)
        await self.writer.write(encode_chunk(chunk))

    # -- lifecycle --------------------------------------------------------------------------------------

    async def execute(self) -> None:
        spec, settings = self.spec, self.deps.settings
        self._started = time.monotonic()
        heartbeat = self._keep() if self._keep is not None else None
        title_task = asyncio.create_task(self._title()) if self._title else None
        cause: EndCause = "error"
        error: AppError | None = None
        try:
            await self.emit(
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
            await self.emit(
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
        spec, deps = self.spec, self.deps
        self.builder.finish()
        deps.metrics.runs_ended[cause] += 1
        deps.metrics.tokens["input"] += self.builder.usage.input_tokens
        deps.metrics.tokens["output"] += self.builder.usage.output_tokens
        reason: FinishReason = {
            "done": self.finish_reason,
            "stopped": "interrupted",
            "timeout": "other",
            "max_steps": "tool-calls",
            "suspended": "tool-calls",
            "error": self._finish_before_error or "error",
        }[cause]
        # A run cut short (error, stop, timeout) still closes its step, so the stream stays well formed.
        final: list[bytes] = [encode_chunk(FinishStep())] if self._step_open else []
        try:
            title = await self._wait_title(title_task)
            if title is not None:
                final.append(
                    encode_chunk(DataConversation(data={"conversationId": spec.conversation.id, "title": title}))
                )
            message = self.builder.message(
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
                final.append(encode_chunk(ErrorChunk(error_text=error.message)))
            else:
                metadata: dict[str, Any] = {
                    "conversationId": spec.conversation.id,
                    "runId": spec.run_id,
                    "provider": spec.provider,
                    "model": spec.model,
                    "usage": msgspec.to_builtins(self.builder.usage),
                }
                if cause in ("timeout", "max_steps", "stopped"):
                    metadata["endedBy"] = "shutdown" if cause == "stopped" and self._shutdown else cause
                final.append(encode_chunk(Finish(finish_reason=reason, message_metadata=metadata)))
            await close_stream(
                self.writer,
                deps.buffer,
                spec.conversation.id,
                spec.run_id,
                final,
                seconds=deps.settings.store_retry_seconds,
            )
        except AppError:
            log.exception("run %s could not be finalised", spec.run_id)
        finally:
            if self._beat is not None:
                self._beat.cancel()  # before the release: no beat may refresh a lease or a slot given up
            with contextlib.suppress(AppError):
                await deps.registry.release(spec.conversation.id, spec.run_id)
            if self._on_end is not None:
                try:
                    await self._on_end(self.builder.usage)
                except AppError as exc:
                    log.warning("run %s could not settle its limits: %s", spec.run_id, exc.message)
            log_run_end(
                run=spec.run_id,
                thread=spec.conversation.id,
                user=spec.user_id,
                provider=spec.provider,
                model=spec.model,
                finish_reason=reason,
                output_tokens=self.builder.usage.output_tokens,
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
        if self._resume is not None:
            suspended, decisions = self._resume
            # The decisions finish the step that made the calls, as the AI SDK's own server does: no new
            # step around them. Each call is declared again first: a live client updates its part in
            # place (it is in the current step), and a client replaying this stream from `start` (which
            # resets the message) learns the call before its output, instead of failing on an unknown id.
            for call in suspended.pending:
                await self.emit(
                    ToolInputAvailable(tool_call_id=call.tool_call_id, tool_name=call.tool_name, input=call.input)
                )
            calls = await resolve_decisions(self, suspended, decisions)
            await execute_tools(self, calls)
        max_steps = self.deps.settings.max_steps
        while True:
            if self.step >= max_steps:
                return "max_steps"
            self.step += 1
            calls = await self._model_step()
            if not calls:
                await self.emit(FinishStep())
                return "done"
            runnable = [c for c in calls if c.error is None]
            # An operator can require approval for any tool, built-ins included (CHAT_APPROVAL_TOOLS).
            ask = [c.needs_approval or c.name in self.deps.settings.approval_tools for c in runnable]
            approvals = [c for c, a in zip(runnable, ask, strict=True) if a]
            await execute_tools(self, [c for c, a in zip(runnable, ask, strict=True) if not a])
            if approvals:
                await request_approvals(self, approvals)
                await self.emit(FinishStep())
                return "suspended"
            await self.emit(FinishStep())

    async def _model_step(self) -> list[ToolCall]:
        """One model call: stream its text, reasoning and tool calls; return the calls to execute."""
        spec, deps = self.spec, self.deps
        await self.emit(StartStep())
        self.builder.step_start()
        if self._history is None:
            # Read once per run: during it the conversation only changes by the message this run builds.
            stored = await deps.store.list_messages(spec.conversation.id)
            self._history = [m for m in stored if m.id != spec.message_id]
        history = [*self._history, self.builder.message()]
        offered = deps.tools.offered(web=spec.web_search) if spec.tools_enabled else []
        request = ProviderRequest(
            model=spec.model,
            messages=tuple(history),
            system=deps.system_prompt(spec.mood, spec.web_search),
            tools=tuple(t.spec for t in offered),
        )
        offered_by_name = {t.name: t for t in offered}
        text_id: str | None = None
        reasoning_id: str | None = None
        reasoning_meta: dict[str, Any] | None = None
        calls: list[ToolCall] = []
        builder, emit = self.builder, self.emit
        # Part ids only need to be unique within the message; short ones keep every delta frame small.
        part_ids = (f"{self.step}-{n}" for n in range(1_000_000))

        async def close_open() -> None:
            nonlocal text_id, reasoning_id, reasoning_meta
            if text_id is not None:
                await emit(TextEnd(id=text_id))
                text_id = None
            if reasoning_id is not None:
                await emit(ReasoningEnd(id=reasoning_id, provider_metadata=reasoning_meta))
                reasoning_id, reasoning_meta = None, None

        try:
            async for event in self.provider.stream(request):
                match event:
                    case ModelText(text=text):
                        if text_id is None:
                            self._first_token()
                            await close_open()
                            text_id = f"t{next(part_ids)}"
                            await emit(TextStart(id=text_id))
                        await emit(TextDelta(id=text_id, delta=text))
                        builder.text(text)
                    case ModelReasoning(text=text):
                        if reasoning_id is None:
                            self._first_token()
                            await close_open()
                            reasoning_id = f"r{next(part_ids)}"
                            await emit(ReasoningStart(id=reasoning_id))
                        await emit(ReasoningDelta(id=reasoning_id, delta=text))
                        builder.reasoning(text)
                    case ModelReasoningSignature(signature=signature, redacted=redacted):
                        if reasoning_id is None:  # a redacted block has no text: it opens its part here
                            self._first_token()
                            await close_open()
                            reasoning_id = f"r{next(part_ids)}"
                            await emit(ReasoningStart(id=reasoning_id))
                        key = "redactedData" if redacted else "signature"
                        reasoning_meta = {"anthropic": {key: signature}}
                        builder.reasoning_metadata(reasoning_meta)
                    case ModelReasoningEnd():
                        if reasoning_id is not None:
                            await close_open()
                            builder.end_part()  # the next block is a part of its own, with its own metadata
                    case ModelToolCallStart(id=call_id, name=name):
                        await close_open()
                        await emit(ToolInputStart(tool_call_id=call_id, tool_name=name))
                        builder.tool(call_id, name, state="input-streaming")
                    case ModelToolCallDelta(id=call_id, delta=delta):
                        await emit(ToolInputDelta(tool_call_id=call_id, input_text_delta=delta))
                    case ModelToolCall(id=call_id, name=name, arguments=arguments):
                        await close_open()
                        call = ToolCall.parse(call_id, name, arguments, offered_by_name)
                        if call.error is not None:
                            await emit(
                                ToolInputError(
                                    tool_call_id=call_id, tool_name=name, input=call.input, error_text=call.error
                                )
                            )
                            builder.tool(call_id, name, state="output-error", input=call.input, error_text=call.error)
                        else:
                            await emit(ToolInputAvailable(tool_call_id=call_id, tool_name=name, input=call.input))
                            builder.tool(call_id, name, state="input-available", input=call.input)
                        calls.append(call)
                    case ModelUsage(usage=usage):
                        builder.usage = builder.usage + usage
                    case ModelFinish(reason=reason):
                        self.finish_reason = self._finish_before_error = reason
        finally:
            if text_id is not None or reasoning_id is not None:
                with contextlib.suppress(AppError):
                    await close_open()
        self._finish_before_error = None  # the stream ended cleanly: a later error is not the model's
        # Calls with invalid input come back too: their error is the result the model sees next step.
        return calls
