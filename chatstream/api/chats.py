"""Seed 003's chats on their own: create one (`POST /api/chats`) and read its messages
(`GET /api/chats/{chatId}/messages`). Its stream route (`POST /api/chats/{chatId}/messages/stream`) is with the
other run-starting routes in `chatstream.api.chat`.

A seed-003 chat is a conversation of the channel `seed003` (`GET /api/chat/conversations?channel=seed003`
lists them); every other route works on it as on any conversation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from chatstream.api.conversations import MAX_TITLE, message_page
from chatstream.api.deps import PrincipalDep, ServicesDep, read_body
from chatstream.api.openapi import documented
from chatstream.api.schemas import check_id, decode_body
from chatstream.errors import BadRequestError, ConflictError
from chatstream.models import Conversation, Message, new_id

__all__ = ["SEED003_CHANNEL", "CreateChatBody", "iso_time", "routes"]

SEED003_CHANNEL = "seed003"
"""The channel seed-003 chats are filed under."""


def iso_time(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 in UTC (`2026-01-01T12:00:00.123000Z`)."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


class CreateChatBody(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    title: str | None = None
    model_id: str | None = None
    chat_id: str | None = None


@post("/api/chats", status_code=201, request_max_body_size=None, **documented("createChat"))
async def create_chat(
    request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep
) -> Response[Any]:
    """Create an empty chat of the caller's. `modelId` (as `GET /api/models` lists them) becomes the chat's
    model, which its messages use unless they name another; `chatId` picks the id (else a new UUID)."""
    body = decode_body(await read_body(request, chat_services), CreateChatBody)
    check_id(body.chat_id, "chatId")
    title: str | None = None
    if body.title is not None:
        title = " ".join(body.title.split())
        if not title or len(title) > MAX_TITLE:
            raise BadRequestError(f"title must be 1 to {MAX_TITLE} characters")
    provider: str | None = None
    model: str | None = None
    if body.model_id is not None:
        chosen, model = chat_services.providers.resolve(None, body.model_id)  # 400 naming the choices
        provider = chosen.name
    store = chat_services.store
    chat_id = body.chat_id or new_id()
    # Racy by design of the store (no create-if-absent): two creates of one new id at the same instant both
    # succeed and the later one wins. Ids are UUIDs the server or the client draws, so only a client racing
    # itself gets there.
    if body.chat_id is not None and await store.get_conversation(chat_id) is not None:
        raise ConflictError("a chat with this chatId exists already", code="conflict")
    conversation = Conversation(
        id=chat_id,
        user_id=chat_principal.user_id,
        title=title,
        # An untitled chat gets one generated from its first message; a title given here is the user's.
        title_source="user" if title is not None else None,
        channel=SEED003_CHANNEL,
        provider=provider,
        model=model,
    )
    await store.put_conversation(conversation)
    return Response(
        {"chatId": conversation.id, "title": conversation.title, "createdAt": iso_time(conversation.created_at)},
        status_code=201,
    )


def message_view(message: Message) -> dict[str, Any]:
    """A stored message as seed 003's chats list it: its text as `content`, its full parts beside it."""
    return {
        "id": message.id,
        "role": message.role,
        "content": message.text,
        "createdAt": iso_time(message.created_at),
        "modelId": message.model,
        "parts": msgspec.to_builtins(message.parts),
    }


@get("/api/chats/{chat_id:str}/messages", **documented("listChatMessages"))
async def list_chat_messages(
    request: Request[Any, Any, Any],
    chat_services: ServicesDep,
    chat_principal: PrincipalDep,
    chat_id: FromPath[str],
) -> dict[str, Any]:
    """The chat's most recent `limit` messages (before `before`), oldest first; `hasMore` says whether older
    ones remain. Owner only (a public chat can be read by anyone authenticated), 404 for an unknown chat."""
    check_id(chat_id, "chatId")
    messages, more = await message_page(request, chat_services, chat_principal, chat_id, "chat")
    return {"chatId": chat_id, "messages": [message_view(m) for m in messages], "hasMore": more}


routes = [create_chat, list_chat_messages]
