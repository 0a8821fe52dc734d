"""Conversation routes (seed 001): list, messages, delete, truncate."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath

from chatstream.api.chat import delete_conversation_cascade
from chatstream.api.deps import PrincipalDep, ServicesDep, read_body
from chatstream.api.schemas import check_id, parse_json
from chatstream.errors import BadRequestError

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


@get("/api/chat/conversations")
async def list_conversations(
    request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep
) -> dict[str, Any]:
    limit = _int_param(request.query_params.get("limit"), "limit", default=20, low=1, high=100)
    channel = request.query_params.get("channel") or None
    conversations = await chat_services.store.list_conversations(chat_principal.user_id, channel=channel, limit=limit)
    return {"conversations": msgspec.to_builtins(conversations)}


@get("/api/chat/messages")
async def list_messages(
    request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep
) -> dict[str, Any]:
    conversation_id = request.query_params.get("conversationId")
    if not conversation_id:
        raise BadRequestError("conversationId is required")
    check_id(conversation_id, "conversationId")
    limit = _int_param(request.query_params.get("limit"), "limit", default=50, low=1, high=100)
    await chat_services.runs.owned_conversation(chat_principal, conversation_id, write=False)
    messages = await chat_services.store.list_messages(conversation_id, limit=limit)
    return {"conversationId": conversation_id, "messages": msgspec.to_builtins(messages)}


@delete("/api/chat/conversations/{conversation_id:str}", status_code=200)
async def delete_conversation(
    chat_services: ServicesDep, chat_principal: PrincipalDep, conversation_id: FromPath[str]
) -> dict[str, Any]:
    check_id(conversation_id, "id")
    await delete_conversation_cascade(chat_services, chat_principal, conversation_id)
    return {"success": True, "conversationId": conversation_id}


class TruncateBody(msgspec.Struct, kw_only=True):
    keep: int


@post("/api/chat/conversations/{conversation_id:str}/truncate", status_code=200, request_max_body_size=None)
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
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 0:
        raise BadRequestError("keep must be a non-negative integer")
    await chat_services.runs.owned_conversation(chat_principal, conversation_id, write=True)
    kept, deleted = await chat_services.store.truncate(conversation_id, keep)
    return {"success": True, "conversationId": conversation_id, "kept": kept, "deleted": deleted}


routes = [list_conversations, list_messages, delete_conversation, truncate]
