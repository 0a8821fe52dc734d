"""Starting, resuming and stopping runs: admission (ownership, one run per conversation, limits,
idempotency), storing the user message, then handing the run to a background task.

What a decision on a suspended run does is `chatstream.runs.approval`; this module admits and launches the
run that continues it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

import msgspec

from chatstream.errors import (
    AppError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    NotFoundError,
    ShuttingDownError,
)
from chatstream.models import ApprovalDecision, ChatRequest, Conversation, Message, Principal, Usage, new_id
from chatstream.providers.registry import is_reasoning_model
from chatstream.providers.titles import heuristic_title
from chatstream.runs.approval import Approvals
from chatstream.runs.choice import choose_model
from chatstream.runs.executor import Run
from chatstream.runs.leases import LeaseKeeper
from chatstream.runs.local import LocalRuns
from chatstream.runs.persist import log_run_end
from chatstream.runs.plan import RunHandle, RunPlan, RunSpec, TitleJob
from chatstream.runs.recovery import recover_lost_answer

if TYPE_CHECKING:
    from chatstream.limits import Admission, Limits
    from chatstream.providers.base import Provider
    from chatstream.providers.registry import ProviderRegistry
    from chatstream.runs.leases import KeptRun
    from chatstream.runs.plan import RunDeps

# `RunHandle` lives in `plan` (the approvals use it too); it is re-exported where it always was.
__all__ = ["RunHandle", "RunService"]

log = logging.getLogger("chatstream.runs")

IDEMPOTENCY_TTL = 24 * 3600.0

A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")

Titler = Callable[["Provider", str, str], Awaitable[str]]

_fingerprint_encoder = msgspec.json.Encoder()


def request_fingerprint(request: ChatRequest) -> str:
    """What an idempotency key is bound to: a hash of the normalised request, so a retry is recognised
    whatever JSON spelling or shape it arrives in. `stream` is left out: it is how the answer is delivered
    (an `Accept` header can change it), not what is asked."""
    encoded = _fingerprint_encoder.encode(msgspec.structs.replace(request, stream=True))
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


async def _none() -> None:
    return None


async def _gather(
    a: Awaitable[A] | None, b: Awaitable[B] | None, c: Awaitable[C] | None
) -> tuple[A | None, B | None, C | None]:
    """`asyncio.gather` of the reads given (None: not needed, its result None); a lone one is awaited as is,
    without the task gather would make for it."""
    reads = (a, b, c)
    needed = [read for read in reads if read is not None]
    done: list[object] = list(await asyncio.gather(*needed)) if len(needed) > 1 else [await r for r in needed]
    results = iter(done)
    out = [next(results) if read is not None else None for read in reads]
    return cast("tuple[A | None, B | None, C | None]", tuple(out))


def _constant(value: str) -> Callable[[], Awaitable[str]]:
    async def get() -> str:
        return value

    return get


def _in_order(steps: Sequence[Callable[[], Awaitable[object]]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        for step in steps:
            await step()

    return run


class RunService:
    def __init__(
        self,
        deps: RunDeps,
        providers: ProviderRegistry,
        *,
        limits: Limits | None = None,
        titler: Titler | None = None,
    ) -> None:
        self.deps = deps
        self.providers = providers
        self.limits = limits
        self.titler = titler
        self.local = LocalRuns()
        """The runs executing in this process (and whether it drains for shutdown)."""
        settings = deps.settings
        self.leases = LeaseKeeper(
            deps.registry,
            limits,
            interval=settings.heartbeat_seconds,
            ttl=3 * settings.heartbeat_seconds,
            hold=settings.run_lease_seconds,
            metrics=deps.metrics,
        )
        """Renews the leases of this process's runs, all in one round trip per beat."""
        self.approvals = Approvals(deps, providers)
        """Deciding runs suspended for approval (resuming or superseding them)."""

    @property
    def active_tasks(self) -> int:
        return len(self.local)

    @property
    def draining(self) -> bool:
        """True from the start of a shutdown: no run is admitted (503) and `/readyz` says unavailable."""
        return self.local.draining

    def _refuse_if_draining(self) -> None:
        if self.local.draining:
            raise ShuttingDownError()

    async def owned_conversation(self, principal: Principal, conversation_id: str, *, write: bool) -> Conversation:
        """The conversation if the caller may use it: 404 when missing, 403 when someone else's
        (public conversations are readable by anyone authenticated, never writable)."""
        conversation = await self.deps.store.get_conversation(conversation_id)
        if conversation is None:
            raise NotFoundError("conversation not found")
        if conversation.user_id != principal.user_id and (write or conversation.visibility != "public"):
            raise ForbiddenError()
        return conversation

    async def start(
        self, principal: Principal, request: ChatRequest, *, ip: str, idempotency_key: str | None = None
    ) -> RunHandle:
        """Admit a send (or a regenerate) and launch its run: the answer streams from the returned handle."""
        self._refuse_if_draining()  # before anything is written or an idempotency key is bound
        store, registry = self.deps.store, self.deps.registry
        conversation_id = request.conversation_id or new_id()
        # One round trip's worth of reads, in parallel: the conversation, the user's defaults, and whether the
        # message the client names is stored already (then this send is an edit of it).
        edited_id = request.message_id if request.conversation_id and request.regenerate is None else None
        # Skipped where the answer is known: a conversation id we just made up names nothing stored, and a send
        # naming its model (or provider) and mood never consults the user's defaults.
        names_model = request.model not in (None, "", "default") or request.provider not in (None, "", "default")
        conversation, preferences, edited = await _gather(
            store.get_conversation(conversation_id) if request.conversation_id else None,
            None if names_model and request.mood else store.get_preferences(principal.user_id),
            store.get_message(conversation_id, edited_id) if edited_id else None,
        )
        if conversation is not None and conversation.user_id != principal.user_id:
            raise ForbiddenError()
        if request.regenerate is not None and conversation is None:
            raise NotFoundError("conversation not found")
        provider, model = choose_model(
            self.providers,
            provider=request.provider,
            model=request.model,
            conversation=conversation,
            preferences=preferences,
        )
        run_id = new_id("run-")
        message_id = new_id("msg-")
        if idempotency_key:
            # The fingerprint rides as a fourth word of the claimed value: no new record, and a value
            # written before fingerprints existed (three words) still answers its retries.
            fingerprint = request_fingerprint(request)
            earlier = await registry.claim_idempotency(
                f"idem:{principal.user_id}:{idempotency_key}",
                f"{conversation_id} {run_id} {message_id} {fingerprint}",
                ttl=IDEMPOTENCY_TTL,
            )
            if earlier is not None:
                handle = await self._earlier_run(earlier, provider.name, model, fingerprint)
                if handle is not None:
                    return handle
        user_message = None
        if request.regenerate is None:
            user_message = Message(
                id=request.message_id or new_id("msg-"),
                conversation_id=conversation_id,
                role="user",
                parts=request.parts,
                metadata=request.metadata,
            )
        if conversation is None:
            text = user_message.text if user_message is not None else ""
            conversation = Conversation(
                id=conversation_id,
                user_id=principal.user_id,
                title=heuristic_title(text),
                title_source="heuristic",
                channel=request.channel,
                visibility=request.visibility,
                provider=provider.name,
                model=model,
            )
            new = True
        else:
            new = False
        steps: list[Callable[[], Awaitable[object]]] = []
        workflow = request.workflow
        # A model that came from a workflow preset (the request named none) is for that message only.
        preset_model = workflow is not None and (request.provider, request.model) == (workflow.provider, workflow.model)
        if not new and not preset_model and (conversation.provider, conversation.model) != (provider.name, model):
            # The conversation remembers the model it now runs on: the next send naming none continues on it.
            conversation = msgspec.structs.replace(conversation, provider=provider.name, model=model)
            switched = conversation
            steps.append(lambda: self._remember_model(switched))
        if not new and conversation.pending_run_id:
            pending_run_id = conversation.pending_run_id
            steps.append(lambda: self.approvals.supersede(conversation_id, pending_run_id))
        rewind: Callable[[], Awaitable[str]] | None = None
        if request.regenerate is not None:
            target = request.regenerate

            async def regenerated() -> str:
                return await self._regenerated(conversation_id, target, request.message_id)

            rewind = regenerated

        elif edited is not None:
            if edited.role != "user":
                raise BadRequestError("messageId names an answer: regenerate it instead of sending over it")
            rewind = _constant(edited.id)
        plan = RunPlan(
            spec=RunSpec(
                run_id=run_id,
                conversation=conversation,
                user_id=principal.user_id,
                provider=provider.name,
                model=model,
                message_id=message_id,
                mood=request.mood or (preferences.mood if preferences and preferences.mood else "normal"),
                web_search=request.web_search,
                tools_enabled=not is_reasoning_model(model),
                workflow=request.workflow,
            ),
            provider=provider,
            new=new,
            user_message=user_message,
            # A new conversation gets a title; so does one created untitled (`POST /api/chats`), on its first send.
            title=self._title_job(provider, model, user_message.text)
            if (new or (conversation.title_source is None and conversation.title is None))
            and user_message is not None
            and self.deps.settings.title_generation
            else None,
            before_start=_in_order(steps) if steps else None,
            supersedes=True,
            rewind=rewind,
        )
        return await self._launch(principal, plan, ip=ip)

    async def _remember_model(self, conversation: Conversation) -> None:
        stored = await self.deps.store.get_conversation(conversation.id)
        if stored is not None:
            changes = {"provider": conversation.provider, "model": conversation.model}
            await self.deps.store.put_conversation(msgspec.structs.replace(stored, **changes))

    async def _regenerated(self, conversation_id: str, target: str, user_message_id: str | None) -> str:
        """The answer a regenerate replaces, checked against the stored history (once the conversation is
        held, so an answer that was still generating is stored by now): `target` when it names one, the
        conversation's last answer for `""`. What precedes it must be the user's turn, so the model is never
        asked to continue its own answer."""
        history = await self.deps.store.list_messages(conversation_id)
        ids = [m.id for m in history]
        if target:
            if target in ids:
                at = ids.index(target)
            elif user_message_id in ids and ids.index(user_message_id) + 1 < len(ids):
                # The client names an answer we never stored under that id (one it saw only in part):
                # what follows the user message it regenerates from is that answer.
                at = ids.index(user_message_id) + 1
            else:
                raise NotFoundError(f"no message {target!r} in this conversation")
        else:
            answers = [i for i, m in enumerate(history) if m.role == "assistant"]
            if not answers:
                raise BadRequestError("nothing to regenerate: the conversation has no answer yet")
            at = answers[-1]
        if history[at].role != "assistant":
            raise BadRequestError("messageId must name an answer (an assistant message) to regenerate")
        if at == 0 or history[at - 1].role != "user":
            raise BadRequestError("nothing to regenerate: the answer does not follow a user message")
        return history[at].id

    async def _earlier_run(self, earlier: str, provider: str, model: str, fingerprint: str) -> RunHandle | None:
        """An idempotent retry: the earlier run's stream while it is buffered. None when the earlier
        attempt never started a run (it failed admission), so this one may. A different request under the
        key is refused (422) whether or not the first one started: the key stays bound to the first, and an
        answer to one request must never pass for another's."""
        conversation_id, run_id, message_id, *rest = earlier.split(" ")
        if rest and rest[0] != fingerprint:
            raise IdempotencyKeyReusedError()
        info = await self.deps.buffer.info(conversation_id)
        started = info is not None and info.run_id == run_id
        if not started:
            stored = await self.deps.store.get_message(conversation_id, message_id)
            started = stored is not None
        if not started:
            return None
        return RunHandle(
            conversation_id=conversation_id,
            run_id=run_id,
            message_id=message_id,
            provider=provider,
            model=model,
            replay=True,
        )

    def _title_job(self, provider: Provider, model: str, text: str) -> TitleJob:
        async def job() -> str:
            if self.titler is not None:
                try:
                    return await self.titler(provider, model, text)
                except AppError:
                    log.info("title generation failed; using the heuristic title")
            return heuristic_title(text)

        return job

    async def _launch(self, principal: Principal, plan: RunPlan, *, ip: str) -> RunHandle:
        """Admit `plan`'s run (the conversation held for it, the limits), store what it starts from, and
        start it in the background."""
        self._refuse_if_draining()
        deps, spec, user_message = self.deps, plan.spec, plan.user_message
        conversation_id = spec.conversation.id
        holder = await self._hold(conversation_id, spec.run_id)
        if holder is not None and plan.supersedes and deps.settings.busy_policy == "supersede":
            holder = await self._supersede_active(conversation_id, spec.run_id, holder)
        if holder is not None:
            raise ConflictError(
                "a generation is already running for this conversation; reconnect to its stream",
                code="run_active",
                conversationId=conversation_id,
            )
        admission: Admission | None = None
        rewind_from: str | None = None
        try:
            if plan.rewind is not None:
                # Under the hold and before the limits: a refused regenerate charges nothing.
                rewind_from = await plan.rewind()
            if self.limits is not None:
                admission = await self.limits.admit(
                    principal,
                    ip,
                    run_id=spec.run_id,
                    # Reserve a whole answer's worth of tokens; `settle` corrects it to real usage.
                    estimate_tokens=deps.settings.token_estimate,
                    # An approval continues the same answer: no new user message to count.
                    count_message=plan.resume is None,
                )
            if plan.before_start is not None:
                await plan.before_start()
            if not plan.new:
                # Before the new user message, so the conversation keeps its order: the lost answer first.
                await self._recover_previous(conversation_id, spec.run_id)
            if plan.new and (rewind_from is not None or user_message is None):
                await deps.store.put_conversation(spec.conversation)
            if rewind_from is not None:
                # Regenerate or edit: one atomic step removes the old answer (or message) and what follows,
                # and puts the edited message in its place; then the stream is replaced as for any run.
                removed = await deps.store.rewind(conversation_id, rewind_from, replacement=user_message)
                if removed is None and user_message is None:
                    raise ConflictError("the answer to regenerate was removed meanwhile", code="conflict")
                if removed is None and user_message is not None:
                    await deps.store.save_message(user_message)
                await deps.buffer.create(conversation_id, spec.run_id)
            # Independent writes, in parallel: with Redis each is a round trip on the way to the first token (on
            # one Redis, calls made in the same turn share one). A new conversation's record goes first.
            elif user_message is not None:
                await asyncio.gather(
                    self._store_user_message(spec.conversation if plan.new else None, user_message),
                    deps.buffer.create(conversation_id, spec.run_id),
                )
            else:
                await deps.buffer.create(conversation_id, spec.run_id)
        except BaseException:
            await deps.registry.release(conversation_id, spec.run_id)
            if admission is not None and self.limits is not None:
                await self.limits.settle(admission, None)
            raise
        limits = self.limits

        def keep() -> KeptRun:
            return self.leases.keep(conversation_id, spec.run_id, admission)

        async def on_end(usage: Usage | None) -> None:
            if limits is not None and admission is not None:
                await limits.settle(admission, usage)

        self.local.spawn(Run(deps, plan, keep=keep, on_end=on_end))
        return RunHandle(
            conversation_id=conversation_id,
            run_id=spec.run_id,
            message_id=spec.message_id,
            provider=spec.provider,
            model=spec.model,
            headers=dict(admission.headers) if admission is not None else {},
        )

    async def _store_user_message(self, new: Conversation | None, message: Message) -> None:
        """`message` stored, in its `new` conversation when that is given (created first)."""
        if new is not None:
            await self.deps.store.put_conversation(new)
        await self.deps.store.save_message(message)

    async def _hold(self, conversation_id: str, run_id: str) -> str | None:
        """Claim the conversation for `run_id`; the run holding it instead, if any."""
        settings = self.deps.settings
        return await self.deps.registry.acquire(
            conversation_id, run_id, ttl=3 * settings.heartbeat_seconds, hold=settings.run_lease_seconds
        )

    async def _supersede_active(self, conversation_id: str, run_id: str, holder: str) -> str | None:
        """A send into a conversation still generating (`busy_policy="supersede"`): stop that run wherever it
        runs, and wait (bounded) for it to store its answer and let go, then hold the conversation for
        `run_id`. The run that still holds it when the wait is over, or None once `run_id` holds it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deps.settings.supersede_wait_seconds
        log.info("run %s supersedes run %s in conversation %s", run_id, holder, conversation_id)
        await self.deps.registry.request_stop(conversation_id)
        delay = 0.01
        while loop.time() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
            current = await self._hold(conversation_id, run_id)
            if current is None:
                return None
            if current != holder:  # another send got in first: that one supersedes in turn
                holder = current
                await self.deps.registry.request_stop(conversation_id)
        return holder

    async def approve(
        self,
        principal: Principal,
        run_id: str,
        conversation_id: str,
        decisions: Sequence[ApprovalDecision],
        *,
        ip: str,
    ) -> RunHandle:
        """Resume a run suspended for approval, on any instance; each run is decided once (409 after)."""
        self._refuse_if_draining()
        # Ownership first: someone else's attempt learns nothing about the run and marks nothing.
        conversation = await self.owned_conversation(principal, conversation_id, write=True)
        plan = await self.approvals.resume(principal, conversation, run_id, decisions)
        return await self._launch(principal, plan, ip=ip)

    async def approve_from_message(
        self,
        principal: Principal,
        conversation_id: str,
        message_id: str | None,
        decisions: Sequence[ApprovalDecision],
        *,
        ip: str,
    ) -> RunHandle:
        """The AI SDK way: the client resends the messages with `approval-responded` tool parts."""
        conversation = await self.owned_conversation(principal, conversation_id, write=True)
        run_id = await self.approvals.run_of_message(conversation, message_id, decisions)
        return await self.approve(principal, run_id, conversation.id, decisions, ip=ip)

    async def stop(self, principal: Principal, conversation_id: str) -> str | None:
        await self.owned_conversation(principal, conversation_id, write=True)
        return await self.deps.registry.request_stop(conversation_id)

    def is_local(self, run_id: str) -> bool:
        """True while `run_id` executes in this process."""
        return self.local.is_local(run_id)

    async def recover_lost(self, conversation_id: str, run_id: str) -> bool:
        """`run_id`'s producer is gone (its liveness lapsed): store its partial answer from the stream and end
        the stream with the error, exactly once across instances. True when this call stored it."""
        if self.local.is_local(run_id):
            return False  # alive by definition: it stores its own answer
        message = await recover_lost_answer(self.deps.buffer, self.deps.store, conversation_id, run_id)
        if message is None:
            return False
        self.deps.metrics.runs_ended["lost"] += 1
        conversation = await self.deps.store.get_conversation(conversation_id)
        log.warning("run %s: its producer stopped; its partial answer %s is stored", run_id, message.id)
        log_run_end(
            run=run_id,
            thread=conversation_id,
            user=conversation.user_id if conversation is not None else "",
            provider=message.provider or "",
            model=message.model or "",
            finish_reason="error",
            output_tokens=0,
            duration_ms=None,
            recovered=True,
        )
        return True

    async def _recover_previous(self, conversation_id: str, run_id: str) -> None:
        """Called holding the conversation for `run_id`: an earlier run whose stream never ended lost its
        producer (it let go of the conversation without a final frame), and its answer is stored now,
        before `create` replaces its stream."""
        info = await self.deps.buffer.info(conversation_id)
        if info is None or info.done or info.run_id == run_id:
            return
        try:
            await self.recover_lost(conversation_id, info.run_id)
        except AppError as exc:  # the new message must not fail for the old answer's sake
            log.warning("could not store the answer of lost run %s: %s", info.run_id, exc.message)

    async def drain(self, grace: float | None = None) -> None:
        """Shutdown, first part: admit no run from now on; running runs get `grace` seconds (default
        `shutdown_grace_seconds`), then are stopped like a user stop. Returns once none is left."""
        await self.local.drain(self.deps.settings.shutdown_grace_seconds if grace is None else grace)

    def hurry(self) -> None:
        """Cut a drain's grace short: stop every run now."""
        self.local.hurry()

    async def aclose(self) -> None:
        """Lifespan shutdown: the server has stopped serving, so whatever grace there was is over. Runs still
        going are stopped like a user stop (they store what they produced and end their streams); only what
        still hangs after that is cancelled."""
        await self.local.aclose()
        await self.leases.aclose()
