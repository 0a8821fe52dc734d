"""What each route takes and answers, for the OpenAPI document: one `Op` per operation id.

The routes read their bodies and query strings themselves (size limits, exact 400s), so Litestar sees
neither; this table says what they are. Errors are listed where they can occur: every `/api` route can
answer 401 (no or a bad token) and 503 (a backend down); routes that read a body 413; routes that start a
run 429 (a rate limit or quota, with `Retry-After` and `RateLimit-*`) and 409 (`CHAT_BUSY_POLICY=reject`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatstream.api.openapi.components import CURSOR as _CURSOR, ID, ref

__all__ = ["ERRORS", "OPERATIONS", "Op", "operation_doc"]

_SSE_FRAMING = (
    "Server-Sent Events (the schema is one event). Each is `id: <cursor>` then `data: <one JSON object>`, "
    "and `: ping` comments keep an idle stream open (every 15 s). The run goes on when the connection drops: "
    "reconnect with `GET /api/chat/{thread_id}/stream` and `Last-Event-ID: <the last id received>` (or "
    "`?cursor=`) to get every event after it, none twice."
)
_UI_STREAM = (
    "The AI SDK UI message stream (`x-vercel-ai-ui-message-stream: v1`): `start`, text/reasoning/tool chunks, "
    "`finish` (or `error`), then `data: [DONE]`. " + _SSE_FRAMING
)
_PLAIN_STREAM = "Plain events (seed 001): `metadata` first, `delta`s, `done` last, or `error`. " + _SSE_FRAMING
_SEED003_STREAM = (
    "Seed-003 events: `start`, `content`, `tool_call`, `tool_result`, `approval_required` (a call waits for "
    "`POST /api/chat/approve`), `end`, or `error`. " + _SSE_FRAMING
)


def _header(description: str, schema: dict[str, Any] | None = None, *, required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema or {"type": "string"}}


_THREAD = _header("The conversation id (a new one when the request named none).", ID, required=True)
_RUN = _header("The run producing the answer.", ID)
_RATE_HEADERS = {
    "RateLimit-Limit": _header("The binding limit's size (draft-ietf-httpapi-ratelimit-headers).", {"type": "integer"}),
    "RateLimit-Remaining": _header("What is left of it.", {"type": "integer"}),
    "RateLimit-Reset": _header("Seconds until it resets.", {"type": "integer"}),
    "RateLimit-Policy": _header("Every time-window policy the request was counted against."),
}
_RETRY_AFTER = _header(
    "Seconds until trying again can succeed (the real time until a slot frees).", {"type": "integer"}
)


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ref("ApiError")}}}
    if headers:
        out["headers"] = headers
    return out


ERRORS: dict[str, dict[str, Any]] = {
    "400": _error('The request is malformed: `{"error": <what to fix>}`.'),
    "401": _error(
        'No token, or one that is not valid: `{"error": "unauthorized"}`. A route that starts a run also answers '
        '`{"error": "bot detected"}` when the host\'s bot check refuses the request.',
        {"WWW-Authenticate": _header('`Bearer realm="chatstream"`, with `error="invalid_token"` for a bad token.')},
    ),
    "403": _error(
        "The conversation belongs to another user (a public one can be read, not written); or a write "
        "authenticated by the session cookie lacks `Content-Type: application/json` or an allowed `Origin` "
        '(`code: "csrf"`).'
    ),
    "404": _error("No such conversation (or message)."),
    "409": _error("The conversation is busy (`CHAT_BUSY_POLICY=reject`), or changed meanwhile."),
    "413": _error("The body, or a file in it, is too large (`CHAT_MAX_BODY_BYTES`; files 10 MiB)."),
    "422": _error("The `Idempotency-Key` was used before for a different request."),
    "429": _error(
        'A rate limit or quota is reached: `{"error": "rate_limit", message, retryAfter, limit}`.',
        {"Retry-After": _RETRY_AFTER, **_RATE_HEADERS},
    ),
    "503": _error(
        "A backend (Redis, the database) is unavailable, or this instance is shutting down "
        "(`code: shutting_down`; another instance can take the request).",
        {"Retry-After": _header("Present when shutting down: retry (elsewhere) after this many seconds.")},
    ),
}


def _json(schema: dict[str, Any], description: str = "OK", headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _stream(description: str, media: dict[str, Any], headers: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "headers": headers, "content": media}


def _sse(event: str) -> dict[str, Any]:
    return {"text/event-stream": {"schema": ref(event)}}


_RUN_HEADERS = {"X-Thread-Id": _THREAD, "X-Run-Id": _RUN, **_RATE_HEADERS}
_UI_HEADERS = {
    **_RUN_HEADERS,
    "x-vercel-ai-ui-message-stream": _header("`v1`: the stream is the AI SDK UI message stream.", {"const": "v1"}),
}


def _query(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def _optional(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional query parameter that is ignored when empty (`?limit=` is no limit given)."""
    return _query(name, {"anyOf": [schema, {"const": ""}]}, description + " Empty: as if absent.")


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": ID}


def _limit(default: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": 100, "default": default}


@dataclass(frozen=True)
class Op:
    """One operation: its own path (under the plugin's), its body, parameters and answers."""

    summary: str
    description: str
    body: str | None = None
    """The request body's component; None: no body."""
    body_required: bool = True
    parameters: list[dict[str, Any]] = field(default_factory=list)
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: tuple[str, ...] = ("400",)
    auth: bool = True
    starts_run: bool = False
    """Rate-limited (429), refused while draining (503) and when the conversation is busy (409)."""


_THREAD_PATH = _path("thread_id", "The conversation (thread) id.")
_CONVERSATION_PATH = _path("conversation_id", "The conversation id.")

_DOCUMENT_403 = {"403": _error("The document belongs to another user.")}
_DOCUMENT_404 = {"404": _error("No such document.")}

OPERATIONS: dict[str, Op] = {
    "sendMessage": Op(
        "Send a message and stream the answer",
        "Stores the user message, starts a run (one per conversation: a send into a busy one supersedes its run, "
        "or is refused with 409 under `CHAT_BUSY_POLICY=reject`) and streams the answer. The parts, transport and "
        "chatbot shapes get the UI message stream; the plain shape gets plain events, or one JSON answer "
        "without `stream: true` or `Accept: text/event-stream`. An `Idempotency-Key` makes a retry get the first "
        "run's answer instead of starting another run.",
        body="ChatSendInput",
        parameters=[
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "1 to 255 printable ASCII characters; the same key (same user, 24 h) never starts a "
                "second run.",
                "schema": {"type": "string", "pattern": "^[\\x20-\\x7e]{1,255}$", "minLength": 1, "maxLength": 255},
            }
        ],
        responses={
            "200": _stream(
                "The answer. " + _UI_STREAM + " Plain shape: " + _PLAIN_STREAM,
                {
                    "text/event-stream": {"schema": {"anyOf": [ref("UIStreamEvent"), ref("PlainStreamEvent")]}},
                    "application/json": {"schema": ref("PlainAnswer")},
                },
                _UI_HEADERS,
            ),
            "502": _json(ref("PlainAnswer"), "The plain shape's JSON answer when the generation failed (`error`)."),
        },
        errors=("400", "403", "404", "413", "422"),
        starts_run=True,
    ),
    "approveToolCall": Op(
        "Approve or deny a tool call and stream the continuation",
        "Resumes a run suspended for approval (on any instance): an approved call runs, a denied one becomes "
        "`tool-output-denied`, and the model continues. `runId` and `threadId` are required (400 without). "
        "The continuation streams in the `dialect` asked for: `ui` (default), `plain` or `seed003`.",
        body="ChatApproveInput",
        responses={
            "200": _stream(
                f"The continuation. {_UI_STREAM} `dialect: plain`: {_PLAIN_STREAM} `dialect: seed003`: "
                f"{_SEED003_STREAM}",
                {
                    "text/event-stream": {
                        "schema": {"anyOf": [ref("UIStreamEvent"), ref("PlainStreamEvent"), ref("Seed003StreamEvent")]}
                    }
                },
                _UI_HEADERS,
            )
        },
        errors=("400", "403", "404", "413"),
        starts_run=True,
    ),
    "resumeStream": Op(
        "Reconnect to a conversation's stream",
        "Replays the active (or just finished) run's stream from the start, or after `Last-Event-ID` / "
        "`?cursor=`, then follows it live. 204 when there is nothing to resume (no run, its buffer expired 60 s "
        "after it ended, or no buffer is configured).",
        parameters=[
            _THREAD_PATH,
            _query("cursor", _CURSOR, "Resume after this event id (as `Last-Event-ID`)."),
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "The last `id:` received; the stream resumes right after it (empty: from the "
                "start). It wins over `?cursor=`; both must be well formed.",
                "schema": {"anyOf": [_CURSOR, {"const": ""}]},
            },
        ],
        responses={
            "200": _stream(
                "The stream. " + _UI_STREAM,
                _sse("UIStreamEvent"),
                {
                    "X-Thread-Id": _THREAD,
                    "X-Run-Id": _RUN,
                    "x-vercel-ai-ui-message-stream": _UI_HEADERS["x-vercel-ai-ui-message-stream"],
                },
            ),
            "204": {"description": "Nothing to resume.", "headers": {"X-Thread-Id": _THREAD}},
        },
        errors=("400", "403"),
    ),
    "stopRun": Op(
        "Stop the active generation",
        "Stops the conversation's run, on whichever instance it runs; its partial answer is stored.",
        parameters=[_THREAD_PATH],
        responses={"200": _json(ref("StopResult"))},
        errors=("400", "403", "404"),
    ),
    "deleteChat": Op(
        "Delete a chat (ai-chatbot)",
        "Deletes the conversation and everything under it (messages, stream, suspended runs).",
        parameters=[_query("id", ID, "The conversation id.", required=True)],
        responses={"200": _json(ref("DeletedChat"))},
        errors=("400", "403", "404"),
    ),
    "streamSeed003Message": Op(
        "Send a message to a seed-003 chat and stream the answer",
        "The chat must exist (404; `POST /api/chats` creates one) and be the caller's (403; so must `userId` "
        "be, when given). `workflowId` (a UUID, else 400) picks a `CHAT_WORKFLOWS` preset (unknown: 404 "
        '`{"error": "workflow not found"}`). Without `modelId` the workflow\'s model, else the chat\'s, answers. '
        "The answer streams as seed-003 events.",
        body="Seed003MessageInput",
        parameters=[_path("chat_id", "The chat id.")],
        responses={
            "200": _stream(
                "The answer. " + _SEED003_STREAM, _sse("Seed003StreamEvent"), {"X-Thread-Id": _THREAD, "X-Run-Id": _RUN}
            ),
        },
        errors=("400", "403", "404", "413"),
        starts_run=True,
    ),
    "createChat": Op(
        "Create a seed-003 chat",
        "An empty chat of the caller's (channel `seed003`). `modelId` (as `GET /api/models` lists them; else "
        "400) becomes the chat's model; `title` (1 to 200 characters) is kept, and without one the first "
        "message gives it one. `chatId` chooses the id (409 when taken); by default a new UUID.",
        body="CreateChatInput",
        body_required=False,
        responses={"201": _json(ref("ChatCreated"), "Created.")},
        errors=("400", "409", "413"),
    ),
    "listChatMessages": Op(
        "A seed-003 chat's messages",
        "The most recent `limit` messages (before `before`), oldest first, each with its text as `content`. "
        "The caller's chats (and public ones); 404 for an unknown chat.",
        parameters=[
            _path("chat_id", "The chat id."),
            _optional("limit", _limit(50), "Page size."),
            _optional("before", ID, "Only messages older than this one (a message id of the chat)."),
        ],
        responses={"200": _json(ref("ChatMessagePage"))},
        errors=("400", "403", "404"),
    ),
    "listConversations": Op(
        "List the caller's conversations",
        "Most recently updated first. `starting_after` pages to older ones and `ending_before` to newer ones "
        "(a conversation id of the caller's; at most one of them; an unknown one is a 400).",
        parameters=[
            _optional("limit", _limit(20), "Page size."),
            _query("channel", {"type": "string"}, "Only this channel's conversations (empty: every channel)."),
            _optional("visibility", {"enum": ["public", "private"]}, "Only public or private ones."),
            _optional("starting_after", ID, "The page after (older than) this conversation."),
            _optional("ending_before", ID, "The page before (newer than) this conversation."),
        ],
        responses={"200": _json(ref("ConversationPage"))},
    ),
    "listMessages": Op(
        "A conversation's messages",
        "The most recent `limit` messages (before `before`), oldest first. Public conversations can be read by "
        "anyone authenticated.",
        parameters=[
            _query("conversationId", ID, "The conversation id.", required=True),
            _optional("limit", _limit(50), "Page size."),
            _optional("before", ID, "Only messages older than this one (a message id of the conversation)."),
        ],
        responses={"200": _json(ref("MessagePage"))},
        errors=("400", "403", "404"),
    ),
    "updateConversation": Op(
        "Rename or re-share a conversation",
        "Owner only. A title set here is kept: a title still being generated does not replace it.",
        body="ConversationPatch",
        parameters=[_CONVERSATION_PATH],
        responses={"200": _json(ref("ConversationUpdated"))},
        errors=("400", "403", "404", "413"),
    ),
    "regenerateAnswer": Op(
        "Replace an answer and stream the new one",
        "Removes the answer `messageId` (default: the last one) and everything after it, then generates anew "
        "from the history before it. The body may be empty.",
        body="RegenerateInput",
        body_required=False,
        parameters=[_CONVERSATION_PATH],
        responses={"200": _stream("The new answer. " + _UI_STREAM, _sse("UIStreamEvent"), _UI_HEADERS)},
        errors=("400", "403", "404", "413"),
        starts_run=True,
    ),
    "deleteConversation": Op(
        "Delete a conversation",
        "Deletes the conversation and everything under it: its run, stream, messages, suspended runs.",
        parameters=[_CONVERSATION_PATH],
        responses={"200": _json(ref("ConversationDeleted"))},
        errors=("400", "403", "404"),
    ),
    "truncateConversation": Op(
        "Keep only the most recent messages",
        "Keeps the `keep` most recent messages (`0`: none) and deletes the rest.",
        body="TruncateInput",
        parameters=[_CONVERSATION_PATH],
        responses={"200": _json(ref("Truncated"))},
        errors=("400", "403", "404", "413"),
    ),
    "getPreferences": Op(
        "The caller's preferences",
        "The stored defaults (null where unset) and what a send naming no model resolves to now.",
        responses={"200": _json(ref("PreferencesView"))},
        errors=(),
    ),
    "putPreferences": Op(
        "Replace the caller's preferences",
        "`provider` and `model` must be configured (a 400 names the choices); a model alone picks its provider; "
        "an absent field is cleared. The body may be empty (clears everything).",
        body="PreferencesInput",
        body_required=False,
        responses={"200": _json(ref("PreferencesView"))},
        errors=("400", "413"),
    ),
    "voteMessage": Op(
        "Vote an answer up or down",
        "Owner only; voting again replaces the vote. Only assistant messages can be voted on.",
        body="VoteInput",
        responses={"200": _json(ref("Vote"))},
        errors=("400", "403", "404", "413"),
    ),
    "listVotes": Op(
        "A conversation's votes",
        "`[{chatId, messageId, isUpvoted}]` in message order; owner only.",
        parameters=[_query("chatId", ID, "The conversation id.", required=True)],
        responses={"200": _json({"type": "array", "items": ref("Vote")})},
        errors=("400", "403", "404"),
    ),
    "getDocument": Op(
        "A document's versions",
        "`[{id, createdAt, title, content, kind, userId}]`, every version oldest first (`createdAt`: ISO 8601, "
        "milliseconds, UTC); owner only.",
        parameters=[_query("id", ID, "The document id.", required=True)],
        responses={"200": _json({"type": "array", "items": ref("DocumentVersion")}), **_DOCUMENT_403, **_DOCUMENT_404},
        errors=("400",),
    ),
    "saveDocument": Op(
        "Save a new version of a document",
        "Appends `{content, title, kind}` as the latest version, owner only; an id not in use creates the "
        "document, the caller's. Returns the version as stored.",
        parameters=[_query("id", ID, "The document id.", required=True)],
        body="DocumentInput",
        responses={"200": _json(ref("DocumentVersion")), **_DOCUMENT_403},
        errors=("400", "413"),
    ),
    "deleteDocumentVersions": Op(
        "Delete the versions after a time",
        "Deletes the versions created strictly after `timestamp`, and the suggestions made for them; owner "
        "only. Returns the deleted versions, oldest first.",
        parameters=[
            _query("id", ID, "The document id.", required=True),
            _query(
                "timestamp",
                {"type": "string", "format": "date-time"},
                "An ISO 8601 (RFC 3339) date-time, such as a version's `createdAt`.",
                required=True,
            ),
        ],
        responses={"200": _json({"type": "array", "items": ref("DocumentVersion")}), **_DOCUMENT_403, **_DOCUMENT_404},
        errors=("400",),
    ),
    "listSuggestions": Op(
        "A document's suggestions",
        "`[{id, documentId, documentCreatedAt, originalText, suggestedText, description, isResolved, userId, "
        "createdAt}]`, every version's, oldest first; owner only. `[]` for an unknown document.",
        parameters=[_query("documentId", ID, "The document id.", required=True)],
        responses={"200": _json({"type": "array", "items": ref("Suggestion")}), **_DOCUMENT_403},
        errors=("400",),
    ),
    "listModels": Op(
        "Configured providers and models",
        "The default choice, every configured provider with its models, and the providers a key would enable.",
        responses={"200": _json(ref("ModelList"))},
        errors=(),
    ),
    "healthz": Op(
        "Liveness",
        "200 while the process serves.",
        responses={"200": _json(ref("Health"))},
        errors=(),
        auth=False,
    ),
    "readyz": Op(
        "Readiness",
        "200 when every backend answers; 503 when one does not, or while shutting down (route new work elsewhere).",
        responses={"200": _json(ref("Readiness")), "503": _json(ref("Readiness"), "Not ready.")},
        errors=(),
        auth=False,
    ),
    "metrics": Op(
        "Prometheus metrics",
        "The text exposition format.",
        responses={
            "200": {"description": "OK", "content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}}}
        },
        errors=(),
        auth=False,
    ),
}


def operation_doc(name: str) -> dict[str, Any]:
    """The OpenAPI fields of one operation (schemas as references to `components()`)."""
    op = OPERATIONS[name]
    responses = dict(op.responses)
    codes = list(op.errors)
    if op.auth:
        codes += ["401", "503"]
    if op.starts_run:
        codes += ["409", "429", "503"]
    for code in sorted(set(codes)):
        responses.setdefault(code, ERRORS[code])
    doc: dict[str, Any] = {"summary": op.summary, "description": op.description, "responses": responses}
    if op.parameters:
        doc["parameters"] = op.parameters
    if op.body is not None:
        doc["requestBody"] = {"required": op.body_required, "content": {"application/json": {"schema": ref(op.body)}}}
    doc["security"] = [{"bearerAuth": []}] if op.auth else []
    return doc
