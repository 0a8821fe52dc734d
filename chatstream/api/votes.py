"""Votes on answers, in the current Vercel chatbot's shape: `PATCH /api/vote`, `GET /api/vote?chatId=`."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Request, get, patch

from chatstream.api.deps import PrincipalDep, ServicesDep, read_body
from chatstream.api.openapi import documented
from chatstream.api.schemas import check_id, decode_body
from chatstream.errors import BadRequestError, NotFoundError
from chatstream.models import Vote

__all__ = ["routes"]


class VoteBody(msgspec.Struct, kw_only=True, rename="camel"):
    chat_id: str
    message_id: str
    type: Literal["up", "down"]


@patch("/api/vote", status_code=200, request_max_body_size=None, **documented("voteMessage"))
async def vote(request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep) -> Any:
    """Vote an answer up or down, owner only; voting again replaces the vote."""
    body = decode_body(await read_body(request, chat_services), VoteBody)
    check_id(body.chat_id, "chatId")
    check_id(body.message_id, "messageId")
    await chat_services.runs.owned_conversation(chat_principal, body.chat_id, write=True)
    message = await chat_services.store.get_message(body.chat_id, body.message_id)
    if message is None:
        raise NotFoundError("message not found")
    if message.role != "assistant":
        raise BadRequestError("only answers (assistant messages) can be voted on")
    record = Vote(chat_id=body.chat_id, message_id=body.message_id, is_upvoted=body.type == "up")
    if not await chat_services.store.vote(record):
        raise NotFoundError("message not found")  # removed (regenerated) between the two calls
    return msgspec.to_builtins(record)


@get("/api/vote", status_code=200, **documented("listVotes"))
async def list_votes(request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep) -> Any:
    """`[{chatId, messageId, isUpvoted}]`, in message order; owner only, as in the chatbot."""
    chat_id = request.query_params.get("chatId")
    if not chat_id:
        raise BadRequestError("chatId is required")
    check_id(chat_id, "chatId")
    await chat_services.runs.owned_conversation(chat_principal, chat_id, write=True)
    return msgspec.to_builtins(await chat_services.store.list_votes(chat_id))


routes = [vote, list_votes]
