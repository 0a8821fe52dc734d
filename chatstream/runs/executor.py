"""One run: the model ↔ tools loop of one generation, written to the stream buffer as it happens.

A run owns its stream: every chunk goes through its `RunOutput`, which encodes it once, writes it to the
buffer and folds it into the answer; readers never talk to the run. Ending order matters (SPEC §7): the
assistant message is stored first, then the final frames are written, then the lease is released, so a
client that saw the end always finds the answer stored, and a reader that finds the lease gone without a
final frame knows the producer died.

A run ended by stop, supersede (a stop the new send requested), abandonment, timeout or error is charged
the output tokens it streamed: per model step, the provider's reported output tokens, or where it reported
none (a step cut short reports nothing) an estimate from the text, reasoning and tool input it streamed,
ceil(characters / 4) (`chatstream.runs.steps`). The estimate is in the stored message's usage too, and the
final frame's `usage` then says `"estimated": true`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from chatstream.errors import AppError
from chatstream.models import Conversation, FinishReason, Message, PendingToolCall, SuspendedRun, Usage
from chatstream.protocol.chunks import (
    Chunk,
    DataConversation,
    ErrorChunk,
    Finish,
    FinishStep,
    Start,
    StartStep,
)
from chatstream.providers.base import ProviderRequest
from chatstream.runs.abandon import until_abandoned
from chatstream.runs.approval import request_approvals, resume_calls, split_approvals
from chatstream.runs.nested import NestedRun
from chatstream.runs.output import RunOutput
from chatstream.runs.persist import log_run_end, until_stored
from chatstream.runs.plan import RunDeps, RunPlan, RunSpec
from chatstream.runs.steps import ModelStep
from chatstream.runs.tooling import ToolCall, execute_tools

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from chatstream.runs.leases import KeptRun

# `RunDeps` and `RunSpec` live in `plan` (no import cycles); they are re-exported where they always were.
__all__ = ["Run", "RunDeps", "RunSpec"]

log = logging.getLogger("chatstream.runs")

EndCause = Literal["done", "stopped", "abandoned", "timeout", "max_steps", "suspended", "error"]


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
        self._estimated = 0
        """Output tokens estimated from the streamed text, for steps whose provider reported none."""
        # What tool handlers reach of this run: its stream and nested model calls charged to it.
        self.tool_run = NestedRun(
            self.out, self.provider, spec.model, spec.conversation.id, deps.documents, on_estimate=self._count_estimate
        )
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
        """Run the work until it ends, a stop is requested (any instance), nobody reads it any more (with
        `abandon_after_seconds`), or the run's time is up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        task = asyncio.ensure_future(work)
        registry, window = self.deps.registry, self.deps.settings.abandon_after_seconds
        stop = asyncio.create_task(registry.wait_stop(self.spec.run_id))
        abandon = asyncio.create_task(until_abandoned(registry, self.spec.run_id, window)) if window > 0 else None
        signals: set[asyncio.Future[None]] = {stop} if abandon is None else {stop, abandon}
        # A plain future, not another task: what `request_stop` resolves (shutdown, no backend needed).
        local = self._local_stop = loop.create_future()
        if self._stop_wanted:
            local.set_result(None)
        try:
            while True:
                done, _ = await asyncio.wait(
                    {task, local, *signals},
                    timeout=max(0.0, deadline - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if task in done:
                    return task.result()
                if not done:
                    cause: EndCause = "timeout"
                    break
                if local in done or (stop in done and stop.exception() is None):
                    cause = "stopped"
                    break
                if abandon is not None and abandon in done and abandon.exception() is None:
                    cause = "abandoned"
                    break
                # A signal failed (its backend went away): that is no reason to end the answer.
                for failed in done & signals:
                    log.warning("stop signal unavailable for run %s: %r", self.spec.run_id, failed.exception())
                    signals.discard(failed)
        finally:
            stop.cancel()
            if abandon is not None:
                abandon.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if not task.cancelled() and task.exception() is None:
            return task.result()  # finished in the same instant
        return cause

    def _count_estimate(self, tokens: int) -> None:
        """A nested call (a tool's) was charged `tokens` estimated output tokens (already in the usage)."""
        self._estimated += tokens

    def _first_token(self) -> None:
        """Called when a text or reasoning part opens (not per token); records the run's first one."""
        if not self._seen_token:
            self._seen_token = True
            self.deps.metrics.first_token.observe(time.monotonic() - self._started)

    async def _end(self, cause: EndCause, error: AppError | None, title_task: asyncio.Task[str] | None) -> None:
        spec, deps, out = self.spec, self.deps, self.out
        used = out.run_usage  # this run's share: what the answer carried before it was charged by its own run
        deps.metrics.runs_ended[cause] += 1
        deps.metrics.tokens["input"] += used.input_tokens
        deps.metrics.tokens["output"] += used.output_tokens
        if self._estimated:
            deps.metrics.tokens["output_estimated"] += self._estimated
        reason: FinishReason = {
            "done": self.finish_reason,
            "stopped": "interrupted",
            "abandoned": "interrupted",
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
            message = out.message(
                provider=spec.provider,
                model=spec.model,
                finish_reason=reason,
                error=error.message if error else None,
                run_id=spec.run_id,
            )
            # One read-modify-write of the conversation for everything the run learned about it.
            changes: dict[str, Any] = {}
            if cause == "suspended":
                changes["pending_run_id"] = spec.run_id
            titled: str | None = None  # the title stored, to be streamed

            async def persist() -> None:
                nonlocal titled
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
                            workflow=spec.workflow,
                        )
                    )
                if changes or title is not None:
                    # Re-read right before the write: a rename (`PATCH`) during the run is kept.
                    conversation = await deps.store.get_conversation(spec.conversation.id)
                    if conversation is not None:
                        updates = dict(changes)
                        if title is not None and conversation.title_source != "user":
                            titled = title
                            updates |= self._title_changes(conversation, title)
                        if updates:
                            await deps.store.put_conversation(msgspec.structs.replace(conversation, **updates))

            # Stored before the final frames (SPEC §7): a client that saw the end finds the answer.
            await until_stored(persist, what="answer", run_id=spec.run_id, seconds=deps.settings.store_retry_seconds)
            if titled is not None:
                final.append(DataConversation(data={"conversationId": spec.conversation.id, "title": titled}))
            if error is not None:
                final.append(ErrorChunk(error_text=error.message))
            else:
                metadata: dict[str, Any] = {
                    "conversationId": spec.conversation.id,
                    "runId": spec.run_id,
                    "provider": spec.provider,
                    "model": spec.model,
                    "usage": self._usage_json(),
                }
                if cause in ("timeout", "max_steps", "stopped", "abandoned"):
                    metadata["endedBy"] = "shutdown" if cause == "stopped" and self._shutdown else cause
                final.append(Finish(finish_reason=reason, message_metadata=metadata))
            await out.close(final, run_id=spec.run_id, seconds=deps.settings.store_retry_seconds)
        except AppError:
            log.exception("run %s could not be finalised", spec.run_id)
        finally:
            if self._beat is not None:
                self._beat.cancel()  # before the release: no beat may refresh a lease or a slot given up
            # The conversation's hold and the limits are given up together (on one Redis, one round trip).
            if self._on_end is not None:
                await asyncio.gather(self._release(), self._settle(self._on_end, used))
            else:
                await self._release()
            log_run_end(
                run=spec.run_id,
                thread=spec.conversation.id,
                user=spec.user_id,
                provider=spec.provider,
                model=spec.model,
                finish_reason=reason,
                output_tokens=used.output_tokens,
                duration_ms=(time.monotonic() - self._started) * 1000,
                **({"estimated_tokens": self._estimated} if self._estimated else {}),
            )

    async def _release(self) -> None:
        with contextlib.suppress(AppError):
            await self.deps.registry.release(self.spec.conversation.id, self.spec.run_id)

    async def _settle(self, on_end: Callable[[Usage | None], Awaitable[None]], used: Usage) -> None:
        try:
            await on_end(used)
        except AppError as exc:
            log.warning("run %s could not settle its limits: %s", self.spec.run_id, exc.message)

    def _title_changes(self, conversation: Conversation, title: str) -> dict[str, Any]:
        """What the title job's `title` changes in the stored `conversation` (whose title is not the user's).
        It is `generated` unless the job fell back to the heuristic title the conversation was created with."""
        created = self.spec.conversation
        source = "heuristic" if created.title_source == "heuristic" and title == created.title else "generated"
        if (conversation.title, conversation.title_source) == (title, source):
            return {}
        return {"title": title, "title_source": source}

    def _usage_json(self) -> dict[str, Any]:
        """The answer's usage as the final frame carries it; `estimated` when part of it was estimated."""
        usage: dict[str, Any] = msgspec.to_builtins(self.out.usage)
        if self._estimated:
            usage["estimated"] = True
        return usage

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
            await execute_tools(out, spec, calls, run=self.tool_run)
        max_steps = deps.settings.max_steps
        if spec.workflow is not None and spec.workflow.max_steps is not None:
            max_steps = min(max_steps, spec.workflow.max_steps)  # a workflow lowers the limit, never raises it
        while True:
            if self.step >= max_steps:
                return "max_steps"
            self.step += 1
            calls = await self._model_step()
            if not calls:
                await out.write(FinishStep())
                return "done"
            now, ask = split_approvals([c for c in calls if c.error is None], deps.settings.approval_tools)
            await execute_tools(out, spec, now, run=self.tool_run)
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
        system = deps.system_prompt(spec.mood, spec.web_search)
        if (workflow := spec.workflow) is not None:
            # A workflow's tool list restricts what is offered (web tools included); its text adds to the prompt.
            offered = [t for t in offered if t.name in workflow.tools]
            system = f"{system}\n\n{workflow.system}" if system else workflow.system
        request = ProviderRequest(
            model=spec.model,
            messages=tuple(history),
            system=system,
            tools=tuple(t.spec for t in offered),
        )
        step = ModelStep(out, {t.name: t for t in offered}, step=self.step, first_token=self._first_token)
        try:
            await step.stream(self.provider.stream(request))
        finally:
            # Also when the step is cut short (stopped, timed out, failed): what it streamed is charged.
            if step.finish is not None:
                self.finish_reason = self._finish_before_error = step.finish
            if estimate := step.estimate():
                self._estimated += estimate
                out.add_usage(Usage(output_tokens=estimate))
            with contextlib.suppress(AppError):
                await out.end_part()
        self._finish_before_error = None  # the stream ended cleanly: a later error is not the model's
        return step.calls
