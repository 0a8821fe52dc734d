"""Conversation routes (seed 001): list (with cursors), messages (paging back), rename or re-share, delete,
truncate."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.params import FromPath
from litestar.response import Stream

from chatstream.api.chat import delete_conversation_cascade, start_and_respond
from chatstream.api.deps import PrincipalDep, Services, ServicesDep, read_body, refuse_bots
from chatstream.api.openapi import documented
from chatstream.api.schemas import check_id, decode_body, parse_json
from chatstream.errors import BadRequestError
from chatstream.models import ChatRequest, Message, Principal, Visibility

__all__ = ["routes"]


def _int_param(raw: str | None, name: str, *, default: int, low: int, high: int) -> int:
    """Validated, never clamped: out of range is a 400 (SPEC §3)."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequestError(f"{name} must be an integer") from exc
    if not low <= value <= high:
        raise BadRequestError(f"{name} must be between {low} and {high}")
    return value


_VISIBILITIES = ("public", "private")


@get("/api/chat/conversations", **documented("listConversations"))
async def list_conversations(
    request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep
) -> dict[str, Any]:
    """The caller's conversations, most recently updated first. `starting_after` / `ending_before` (a
    conversation id, as the Vercel chatbot's `/api/history`) page older / newer; `hasMore` says whether
    another page lies in that direction."""
    query = request.query_params
    limit = _int_param(query.get("limit"), "limit", default=20, low=1, high=100)
    channel = query.get("channel") or None
    visibility = query.get("visibility") or None
    if visibility is not None and visibility not in _VISIBILITIES:
        raise BadRequestError("visibility must be public or private")
    after, before = query.get("starting_after") or None, query.get("ending_before") or None
    if after is not None and before is not None:
        raise BadRequestError("only one of starting_after and ending_before may be given")
    check_id(after, "starting_after")
    check_id(before, "ending_before")
    store = chat_services.store
    cursor = after or before
    if cursor is not None:
        known = await store.get_conversation(cursor)
        if known is None or known.user_id != chat_principal.user_id:
            raise BadRequestError(f"unknown cursor {cursor!r}: not one of your conversations")
    # One more than asked tells whether there is another page, without a count.
    found = await store.list_conversations(
        chat_principal.user_id,
        channel=channel,
        visibility=visibility,
        limit=limit + 1,
        starting_after=after,
        ending_before=before,
    )
    more = len(found) > limit
    page = (found[1:] if before is not None else found[:limit]) if more else found
    return {"conversations": msgspec.to_builtins(page), "hasMore": more}


@get("/api/chat/messages", **documented("listMessages"))
async def list_messages(
    request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep
) -> dict[str, Any]:
    conversation_id = request.query_params.get("conversationId")
    if not conversation_id:
        raise BadRequestError("conversationId is required")
    check_id(conversation_id, "conversationId")
    messages, more = await message_page(request, chat_services, chat_principal, conversation_id, "conversation")
    return {"conversationId": conversation_id, "messages": msgspec.to_builtins(messages), "hasMore": more}


async def message_page(
    request: Request[Any, Any, Any], services: Services, principal: Principal, conversation_id: str, noun: str
) -> tuple[list[Message], bool]:
    """The page of messages `limit` and `before` (query parameters) ask for, of a conversation the caller may
    read: the most recent `limit` before `before`, oldest first, and whether older ones remain. `noun` names
    the conversation in the 400 for an unknown `before` ("conversation", "chat")."""
    limit = _int_param(request.query_params.get("limit"), "limit", default=50, low=1, high=100)
    before = request.query_params.get("before") or None
    check_id(before, "before")
    await services.runs.owned_conversation(principal, conversation_id, write=False)
    store = services.store
    if before is not None and await store.get_message(conversation_id, before) is None:
        raise BadRequestError(f"unknown message {before!r} in this {noun}")
    # One more than asked for tells whether older ones remain.
    found = await store.list_messages(conversation_id, limit=limit + 1, before=before)
    more = len(found) > limit
    return (found[1:] if more else found), more


class ConversationPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: str | None = None
    visibility: Visibility | None = None


MAX_TITLE = 200


@patch(
    "/api/chat/conversations/{conversation_id:str}",
    status_code=200,
    request_max_body_size=None,
    **documented("updateConversation"),
)
async def update_conversation(
    request: Request[Any, Any, Any],
    chat_services: ServicesDep,
    chat_principal: PrincipalDep,
    conversation_id: FromPath[str],
) -> dict[str, Any]:
    """Rename or re-share a conversation, owner only. A title set here is kept: a title still being
    generated for the conversation does not overwrite it."""
    check_id(conversation_id, "id")
    raw = await read_body(request, chat_services)
    body = decode_body(raw, ConversationPatch)
    changes: dict[str, Any] = {}
    if body.title is not None:
        title = " ".join(body.title.split())
        if not title or len(title) > MAX_TITLE:
            raise BadRequestError(f"title must be 1 to {MAX_TITLE} characters")
        changes["title"] = title
        changes["title_source"] = "user"
    if body.visibility is not None:
        changes["visibility"] = body.visibility
    if not changes:
        raise BadRequestError("nothing to change: give title or visibility")
    conversation = await chat_services.runs.owned_conversation(chat_principal, conversation_id, write=True)
    updated = msgspec.structs.replace(conversation, **changes)
    await chat_services.store.put_conversation(updated)
    return {"conversation": msgspec.to_builtins(updated)}


@delete("/api/chat/conversations/{conversation_id:str}", status_code=200, **documented("deleteConversation"))
async def delete_conversation(
    chat_services: ServicesDep, chat_principal: PrincipalDep, conversation_id: FromPath[str]
) -> dict[str, Any]:
    check_id(conversation_id, "id")
    await delete_conversation_cascade(chat_services, chat_principal, conversation_id)
    return {"success": True, "conversationId": conversation_id}


class RegenerateBody(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    message_id: str | None = None
    provider: str | None = None
    model: str | None = None


@post(
    "/api/chat/conversations/{conversation_id:str}/regenerate",
    status_code=200,
    request_max_body_size=None,
    **documented("regenerateAnswer"),
)
async def regenerate(
    request: Request[Any, Any, Any],
    chat_services: ServicesDep,
    chat_principal: PrincipalDep,
    conversation_id: FromPath[str],
) -> Response[Any] | Stream:
    """Replace an answer (`messageId`, default the last one) and stream the new one as a UI message stream.
    The answer and everything after it are removed first; the model sees the history before it."""
    await refuse_bots(request, chat_services)
    check_id(conversation_id, "id")
    raw = await read_body(request, chat_services)
    body = decode_body(raw, RegenerateBody)
    check_id(body.message_id, "messageId")
    chat = ChatRequest(
        parts=(),
        conversation_id=conversation_id,
        regenerate=body.message_id or "",
        provider=body.provider,
        model=body.model,
    )
    return await start_and_respond(request, chat_services, chat_principal, chat)


class TruncateBody(msgspec.Struct, kw_only=True):
    keep: int


@post(
    "/api/chat/conversations/{conversation_id:str}/truncate",
    status_code=200,
    request_max_body_size=None,
    **documented("truncateConversation"),
)
async def truncate(
    request: Request[Any, Any, Any],
    chat_services: ServicesDep,
    chat_principal: PrincipalDep,
    conversation_id: FromPath[str],
) -> dict[str, Any]:
    check_id(conversation_id, "id")
    raw = await read_body(request, chat_services)
    obj = parse_json(raw) if raw.strip() else {}
    if not isinstance(obj, dict) or "keep" not in obj:
        raise BadRequestError("keep is required")
    keep = obj["keep"]
    if isinstance(keep, float) and keep.is_integer():
        keep = int(keep)  # `17.0` is an integer in JSON (and in JSON Schema)
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 0:
        raise BadRequestError("keep must be a non-negative integer")
    await chat_services.runs.owned_conversation(chat_principal, conversation_id, write=True)
    kept, deleted = await chat_services.store.truncate(conversation_id, keep)
    return {"success": True, "conversationId": conversation_id, "kept": kept, "deleted": deleted}


routes = [list_conversations, list_messages, update_conversation, regenerate, delete_conversation, truncate]
