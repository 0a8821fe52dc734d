"""Chat routes: send (four shapes), approve, resume, stop, delete; and the seed-003 stream route."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, delete, get, post
from litestar.params import FromPath
from litestar.response import Stream

from chatstream.api.deps import PrincipalDep, Services, ServicesDep, read_body, refuse_bots
from chatstream.api.openapi import documented
from chatstream.api.schemas import ApproveBody, Seed003Body, _convert, check_id, parse_chat_body, parse_json
from chatstream.api.streaming import collect_answer, sse_response, stored_response
from chatstream.errors import BadRequestError, ForbiddenError, NotFoundError, ShuttingDownError
from chatstream.limits.client_ip import client_ip as resolve_client_ip
from chatstream.models import (
    ApprovalDecision,
    ChatRequest,
    MessagePart,
    Principal,
)
from chatstream.protocol.dialects import dialect_for
from chatstream.protocol.sse import valid_cursor
from chatstream.workflows import is_uuid

if TYPE_CHECKING:
    from chatstream.runs.service import RunHandle

__all__ = ["routes"]


def client_ip(request: Request[Any, Any, Any], services: Services) -> str:
    peer = request.client.host if request.client else "unknown"
    if services.limits is None:
        return peer
    return resolve_client_ip(peer, request.headers, services.settings.trusted_proxies)


MAX_IDEMPOTENCY_KEY = 255
"""Longest `Idempotency-Key` (as Stripe's): it becomes part of a registry key."""


def _idempotency_key(request: Request[Any, Any, Any]) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isascii() and key.isprintable()):
        raise BadRequestError(f"invalid Idempotency-Key (1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters)")
    return key


def _started(services: Services, handle: RunHandle) -> None:
    """Count a run start for `/metrics`, and its time since the request arrived; an idempotent retry answered
    with an earlier run started none."""
    if not handle.replay:
        services.count("runs_started")
        services.metrics.run_started()


def _run_headers(handle: RunHandle) -> dict[str, str]:
    return {"X-Thread-Id": handle.conversation_id, "X-Run-Id": handle.run_id, **handle.headers}


async def _respond(
    request: Request[Any, Any, Any], services: Services, handle: RunHandle, chat: ChatRequest
) -> Response[Any] | Stream:
    headers = _run_headers(handle)
    if handle.replay:
        info = await services.buffer.info(handle.conversation_id)
        if info is None or info.run_id != handle.run_id:
            # An idempotent retry after the first run's stream expired: its stored result.
            stored = await services.store.get_message(handle.conversation_id, handle.message_id)
            if stored is not None:
                return stored_response(stored, dialect_for(chat.dialect), stream=chat.stream, headers=headers)
    if not chat.stream:
        answer = await collect_answer(services, handle.conversation_id, handle.run_id)
        status = 502 if "error" in answer else 200
        return Response(answer, status_code=status, headers=headers)
    return sse_response(
        services, handle.conversation_id, handle.run_id, dialect=dialect_for(chat.dialect), headers=headers
    )


@post("/api/chat", status_code=200, request_max_body_size=None, **documented("sendMessage"))
async def send(
    request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep
) -> Response[Any] | Stream:
    await refuse_bots(request, chat_services)
    accept_sse = "text/event-stream" in request.headers.get("accept", "")
    idempotency_key = _idempotency_key(request)
    chat = parse_chat_body(
        parse_json(await read_body(request, chat_services)),
        accept_sse=accept_sse,
        media_types=chat_services.settings.file_media_types,
    )
    if chat.approvals:
        if chat.conversation_id is None:
            raise BadRequestError("id is required")
        handle = await chat_services.runs.approve_from_message(
            chat_principal, chat.conversation_id, chat.message_id, chat.approvals, ip=client_ip(request, chat_services)
        )
        _started(chat_services, handle)
        return await _respond(request, chat_services, handle, chat)
    return await start_and_respond(request, chat_services, chat_principal, chat, idempotency_key=idempotency_key)


async def start_and_respond(
    request: Request[Any, Any, Any],
    services: Services,
    principal: Principal,
    chat: ChatRequest,
    *,
    idempotency_key: str | None = None,
) -> Response[Any] | Stream:
    """Start a run for `chat` and answer with its stream (or its JSON answer): the send and regenerate routes."""
    ip = client_ip(request, services)
    handle = await services.runs.start(principal, chat, ip=ip, idempotency_key=idempotency_key)
    _started(services, handle)
    return await _respond(request, services, handle, chat)


@post("/api/chat/approve", status_code=200, request_max_body_size=None, **documented("approveToolCall"))
async def approve(request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep) -> Stream:
    await refuse_bots(request, chat_services)
    body: ApproveBody = _convert(parse_json(await read_body(request, chat_services)), ApproveBody)
    if not body.run_id or not body.thread_id:
        raise BadRequestError("runId and threadId are required")
    check_id(body.run_id, "runId")
    check_id(body.thread_id, "threadId")
    check_id(body.tool_call_id, "toolCallId")
    check_id(body.message_id, "messageId")
    decision = ApprovalDecision(tool_call_id=body.tool_call_id, approved=body.approved is True, reason=body.reason)
    handle = await chat_services.runs.approve(
        chat_principal, body.run_id, body.thread_id, [decision], ip=client_ip(request, chat_services)
    )
    _started(chat_services, handle)
    # The continuation speaks the dialect the client asks for (`dialect`; a seed-003 client says `seed003`).
    return sse_response(
        chat_services,
        handle.conversation_id,
        handle.run_id,
        dialect=dialect_for(body.dialect),
        headers=_run_headers(handle),
    )


@get("/api/chat/{thread_id:str}/stream", status_code=200, **documented("resumeStream"))
async def resume(
    request: Request[Any, Any, Any],
    chat_services: ServicesDep,
    chat_principal: PrincipalDep,
    thread_id: FromPath[str],
) -> Response[Any] | Stream:
    # First: the id is echoed in `X-Thread-Id`, where CR/LF or non-Latin-1 would break the response itself.
    check_id(thread_id, "threadId")
    header, query = request.headers.get("last-event-id") or None, request.query_params.get("cursor")
    # Both are checked, though the header wins: a malformed one is a 400 whichever is used.
    if any(given is not None and not valid_cursor(given) for given in (header, query)):
        raise BadRequestError("invalid cursor")
    cursor = header or query
    conversation = await chat_services.store.get_conversation(thread_id)
    if conversation is not None:
        await chat_services.runs.owned_conversation(chat_principal, thread_id, write=False)
    info = await chat_services.buffer.info(thread_id) if chat_services.settings.resumable_streams else None
    if conversation is None or info is None:
        # Nothing to resume (never started, finished longer ago than the buffer TTL, or serverless).
        return Response(None, status_code=204, headers={"X-Thread-Id": thread_id})
    if cursor is not None:
        try:
            await chat_services.buffer.read(thread_id, cursor)
        except ValueError as exc:
            raise BadRequestError("invalid cursor") from exc
    if chat_services.runs.draining and not info.done and not chat_services.runs.is_local(info.run_id):
        # Shutting down, and the run is produced elsewhere: a 503 sends the client (or its load balancer) to
        # an instance that stays, rather than a stream this one would have to cut short.
        raise ShuttingDownError()
    chat_services.count("resumes")
    return sse_response(
        chat_services, thread_id, info.run_id, after=cursor, headers={"X-Thread-Id": thread_id, "X-Run-Id": info.run_id}
    )


@post("/api/chat/{thread_id:str}/stop", status_code=200, request_max_body_size=None, **documented("stopRun"))
async def stop(chat_services: ServicesDep, chat_principal: PrincipalDep, thread_id: FromPath[str]) -> dict[str, Any]:
    check_id(thread_id, "threadId")
    run_id = await chat_services.runs.stop(chat_principal, thread_id)
    return {"stopped": run_id is not None, "runId": run_id, "threadId": thread_id}


@delete("/api/chat", status_code=200, **documented("deleteChat"))
async def delete_chat(
    request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep
) -> dict[str, Any]:
    chat_id = request.query_params.get("id")
    if not chat_id:
        raise BadRequestError("id is required")
    check_id(chat_id, "id")
    conversation = await delete_conversation_cascade(chat_services, chat_principal, chat_id)
    return {
        "deletedChat": {
            "id": conversation.id,
            "title": conversation.title,
            "userId": conversation.user_id,
            "visibility": conversation.visibility,
            "createdAt": datetime.fromtimestamp(conversation.created_at / 1000, UTC).isoformat().replace("+00:00", "Z"),
        }
    }


async def delete_conversation_cascade(services: Services, principal: Principal, conversation_id: str) -> Any:
    """Delete a conversation and everything under it: its active run, stream buffer, messages, suspensions."""
    conversation = await services.runs.owned_conversation(principal, conversation_id, write=True)
    await services.registry.request_stop(conversation_id)
    await services.store.delete_conversation(conversation_id)
    await services.buffer.delete(conversation_id)
    return conversation


@post(
    "/api/chats/{chat_id:str}/messages/stream",
    status_code=200,
    request_max_body_size=None,
    **documented("streamSeed003Message"),
)
async def seed003_stream(
    request: Request[Any, Any, Any],
    chat_services: ServicesDep,
    chat_principal: PrincipalDep,
    chat_id: FromPath[str],
) -> Stream:
    await refuse_bots(request, chat_services)
    check_id(chat_id, "chatId")
    body: Seed003Body = _convert(parse_json(await read_body(request, chat_services)), Seed003Body)
    if not body.content.strip():
        raise BadRequestError("content must not be empty")
    if body.user_id is not None and body.user_id != chat_principal.user_id:
        raise ForbiddenError("userId does not match the authenticated user")
    workflow = None
    if body.workflow_id is not None:
        if not is_uuid(body.workflow_id):
            raise BadRequestError("workflowId must be a UUID")
        workflow = chat_services.workflows.get(body.workflow_id.lower())
        if workflow is None:
            raise NotFoundError("workflow not found")
    # 404 for a chat that does not exist, 403 for someone else's (seed 003): `POST /api/chats` creates chats.
    await chat_services.runs.owned_conversation(chat_principal, chat_id, write=True)
    # The model the message names; else the workflow's; else the chat's own (`POST /api/chats {modelId}`).
    model, provider = body.model_id or None, None
    if model is None and workflow is not None:
        provider, model = workflow.provider, workflow.model
    chat = ChatRequest(
        parts=(MessagePart(type="text", text=body.content),),
        conversation_id=chat_id,
        provider=provider,
        model=model,
        web_search=body.web_search,
        dialect="seed003",
        workflow=workflow,
    )
    handle = await chat_services.runs.start(chat_principal, chat, ip=client_ip(request, chat_services))
    _started(chat_services, handle)
    return sse_response(
        chat_services,
        handle.conversation_id,
        handle.run_id,
        dialect=dialect_for("seed003"),
        headers=_run_headers(handle),
    )


routes = [send, approve, resume, stop, delete_chat, seed003_stream]
