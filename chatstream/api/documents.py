"""Documents and suggestions, in the current Vercel chatbot's shape: `GET`, `POST`, `DELETE /api/document?id=`
and `GET /api/suggestions?documentId=`.

A document is all its versions (`chatstream.models.Document`), which belong to the user who wrote the first:
only they read, extend or cut it (403 for anyone else), whichever conversation the document tools wrote it in.
Times travel as ISO 8601 strings in UTC with milliseconds, as the chatbot's JSON dates
(`2026-12-01T15:40:00.123Z`); `DELETE`'s `timestamp` is one of them (any RFC 3339 date-time).

Where the chatbot gives no answer of its own, we chose: `DELETE` of an unknown document is 404 (the chatbot
fails on it), and suggestions of an unknown document are `[]` (as the chatbot answers when there are none),
of someone else's 403.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, delete, get, post

from chatstream.api.deps import PrincipalDep, ServicesDep, read_body
from chatstream.api.openapi import documented
from chatstream.api.schemas import check_id, decode_body
from chatstream.errors import BadRequestError, ForbiddenError, NotFoundError
from chatstream.models import Document, DocumentKind, Principal, Suggestion, now_ms

__all__ = ["DocumentBody", "DocumentVersion", "SuggestionView", "iso_ms", "parse_timestamp", "routes"]


class DocumentBody(msgspec.Struct, kw_only=True, rename="camel"):
    """A new version: `{content, title, kind}` (other keys, such as the chatbot's `chatId`, are ignored)."""

    content: str | None
    title: str
    kind: DocumentKind


class DocumentVersion(msgspec.Struct, kw_only=True, frozen=True, rename="camel"):
    """One version of a document, as the chatbot's `Document` row."""

    id: str
    created_at: str
    title: str
    content: str | None
    kind: DocumentKind
    user_id: str


class SuggestionView(msgspec.Struct, kw_only=True, frozen=True, rename="camel"):
    """A suggested edit, as the chatbot's `Suggestion` row; `documentCreatedAt` names the version."""

    id: str
    document_id: str
    document_created_at: str
    original_text: str
    suggested_text: str
    description: str | None
    is_resolved: bool
    user_id: str
    created_at: str


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as the chatbot's JSON dates: `2026-12-01T15:40:00.123Z`."""
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))", re.ASCII
)


def parse_timestamp(value: str) -> int:
    """An RFC 3339 date-time (the ISO 8601 profile JSON dates use) as epoch milliseconds, rounded down (a
    version is deleted when created strictly after it). Raises `BadRequestError` for anything else."""
    found = _DATE_TIME.fullmatch(value)
    if found is None:
        raise BadRequestError("invalid timestamp: expected an ISO 8601 date-time such as 2026-12-01T15:40:00.123Z")
    year, month, day, hour, minute, second = (int(found[i]) for i in range(1, 7))
    offset = 0 if found[8] else (1 if found[9] == "+" else -1) * (int(found[10]) * 60 + int(found[11]))
    valid = (
        1 <= month <= 12
        and 1 <= day <= _days_in_month(year, month)
        and hour <= 23
        and minute <= 59
        and second <= 60  # a leap second
        and int(found[10] or 0) <= 23
        and int(found[11] or 0) <= 59
    )
    if not valid:
        raise BadRequestError(f"invalid timestamp: {value[:64]!r} is not a date-time")
    days = _days_from_civil(year, month, day)
    fraction = int(((found[7] or "") + "000")[:3])
    return (((days * 24 + hour) * 60 + minute - offset) * 60 + second) * 1000 + fraction


def _days_in_month(year: int, month: int) -> int:
    return 29 if month == 2 and calendar.isleap(year) else (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (year 0 included, which `datetime` has not)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _version(document: Document) -> dict[str, Any]:
    d = document
    view = DocumentVersion(
        id=d.id, created_at=iso_ms(d.created_at), title=d.title, content=d.content, kind=d.kind, user_id=d.user_id
    )
    result: dict[str, Any] = msgspec.to_builtins(view)
    return result


def _suggestion(s: Suggestion) -> dict[str, Any]:
    view = SuggestionView(
        id=s.id,
        document_id=s.document_id,
        document_created_at=iso_ms(s.document_created_at),
        original_text=s.original_text,
        suggested_text=s.suggested_text,
        description=s.description,
        is_resolved=s.is_resolved,
        user_id=s.user_id,
        created_at=iso_ms(s.created_at),
    )
    result: dict[str, Any] = msgspec.to_builtins(view)
    return result


def _query_id(request: Request[Any, Any, Any], name: str) -> str:
    value: str | None = request.query_params.get(name)
    if not value:
        raise BadRequestError(f"{name} is required")
    check_id(value, name)
    return value


def _check_owner(versions: list[Document], principal: Principal) -> None:
    if versions and versions[0].user_id != principal.user_id:
        raise ForbiddenError()


@get("/api/document", status_code=200, **documented("getDocument"))
async def get_document(
    request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep
) -> list[dict[str, Any]]:
    """Every version of a document, oldest first; owner only."""
    document_id = _query_id(request, "id")
    versions = await chat_services.documents.list_versions(document_id)
    if not versions:
        raise NotFoundError("document not found")
    _check_owner(versions, chat_principal)
    return [_version(v) for v in versions]


@post("/api/document", status_code=200, request_max_body_size=None, **documented("saveDocument"))
async def save_document(
    request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep
) -> dict[str, Any]:
    """Save a new version (a new id creates the document, the caller's); owner only. Returns it as stored."""
    document_id = _query_id(request, "id")
    body = decode_body(await read_body(request, chat_services), DocumentBody)
    documents = chat_services.documents
    _check_owner(await documents.list_versions(document_id), chat_principal)
    new = Document(
        id=document_id,
        created_at=now_ms(),
        title=body.title,
        content=body.content,
        kind=body.kind,
        user_id=chat_principal.user_id,
    )
    return _version(await documents.save_document(new))


@delete("/api/document", status_code=200, **documented("deleteDocumentVersions"))
async def delete_versions(
    request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep
) -> list[dict[str, Any]]:
    """Delete the versions created after `timestamp`, with their suggestions; owner only. Returns them."""
    document_id = _query_id(request, "id")
    raw = request.query_params.get("timestamp")
    if not raw:
        raise BadRequestError("timestamp is required")
    after = parse_timestamp(raw)
    documents = chat_services.documents
    versions = await documents.list_versions(document_id)
    if not versions:
        raise NotFoundError("document not found")
    _check_owner(versions, chat_principal)
    return [_version(v) for v in await documents.delete_versions_after(document_id, after)]


@get("/api/suggestions", status_code=200, **documented("listSuggestions"))
async def list_suggestions(
    request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep
) -> list[dict[str, Any]]:
    """A document's suggestions (every version's), oldest first; owner only, `[]` for an unknown document."""
    document_id = _query_id(request, "documentId")
    documents = chat_services.documents
    versions = await documents.list_versions(document_id)
    if not versions:
        return []
    _check_owner(versions, chat_principal)
    return [_suggestion(s) for s in await documents.list_suggestions(document_id)]


routes = [get_document, save_document, delete_versions, list_suggestions]
