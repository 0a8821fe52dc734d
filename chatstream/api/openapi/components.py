"""The schemas of the OpenAPI document, generated from the msgspec Structs the routes decode and encode.

`msgspec.json.schema_components` gives each Struct's JSON Schema as msgspec decodes it (camelCase names,
defaults, literals, tagged unions with their discriminator). What a handler checks beyond its Struct (the
id grammar, non-empty texts, ranges, the data URL of a file) is added by `_REFINE`, so that a body the
schema accepts is one the route accepts, and one it refuses is refused (schemathesis holds it to both).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import msgspec

from chatstream.api.schemas import MAX_FILE_BYTES
from chatstream.models import ID_GRAMMAR, Vote
from chatstream.protocol import bodies
from chatstream.protocol.chunks import DataPart, TaggedChunk
from chatstream.settings import FILE_MEDIA_TYPES

__all__ = ["CURSOR", "ID", "REF", "components", "id_schema", "ref"]

REF = "#/components/schemas/"

ID: dict[str, Any] = {"type": "string", "pattern": f"^{ID_GRAMMAR}$", "minLength": 1, "maxLength": 128}
"""A client-chosen id (`chatstream.models.ID_GRAMMAR`): anything else is `400 invalid <field>`."""

# Python's whitespace (what `str.strip()` removes), which is not quite ECMA-262's `\s`: a text made only of
# these is empty to the server.
_PY_SPACE = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NOT_BLANK = f"[^{_PY_SPACE}]"
"""A string with something other than whitespace in it (unanchored: it must occur somewhere)."""

_B64 = "(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
_MAX_URL = 64 + (MAX_FILE_BYTES + 2) // 3 * 4


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def id_schema(description: str | None = None, *, nullable: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"anyOf": [ID, {"type": "null"}]} if nullable else dict(ID)
    if description:
        schema["description"] = description
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}], "default": None}


CURSOR: dict[str, Any] = {"type": "string", "pattern": "^[0-9.-]{1,64}$", "minLength": 1, "maxLength": 64}
"""A stream cursor: an event's `id:`, sent back as `Last-Event-ID` (or `?cursor=`)."""


def _sse_event(title: str, payload: dict[str, Any], description: str, *, done: bool = False) -> dict[str, Any]:
    """One Server-Sent Event as OpenAPI 3.1 describes an event of a stream: `data` holds the JSON payload."""
    data: dict[str, Any] = {"type": "string", "contentMediaType": "application/json", "contentSchema": payload}
    if done:
        data = {"anyOf": [{"const": "[DONE]", "description": "The end of the stream."}, data]}
    return {
        "title": title,
        "description": description,
        "type": "object",
        "properties": {
            "id": {**CURSOR, "description": "The event's cursor: `Last-Event-ID` resumes right after it."},
            "event": {"const": "message"},
            "data": data,
        },
        "required": ["data"],
    }


def _file_of(media_type: str) -> dict[str, Any]:
    """A file part's media type and its data URL's must agree (parameters and case aside)."""
    top, _, sub = media_type.partition("/")
    return {
        "properties": {
            "mediaType": {"pattern": f"^(?:{top}/{sub})(?:;.*)?$"},
            "url": {"pattern": f"^data:{top}/{sub}(?:;[^;,]*)*;base64,{_B64}$"},
        }
    }


def _content_parts() -> dict[str, dict[str, Any]]:
    """`ContentPart` and its two kinds, `TextPart` and `FilePart`."""
    text = {
        "title": "TextPart",
        "type": "object",
        "properties": {
            "type": {"const": "text"},
            "text": {"type": "string"},
            "mediaType": _nullable({"type": "string"}),
            "url": _nullable({"type": "string"}),
            "filename": _nullable({"type": "string"}),
        },
        "required": ["type", "text"],
    }
    file = {
        "title": "FilePart",
        "description": (
            "A file as a base64 data URL (`data:<mediaType>;base64,...`) of an allowed media type (by default "
            f"{', '.join(FILE_MEDIA_TYPES)}; `CHAT_FILE_MEDIA_TYPES`), at most {MAX_FILE_BYTES} bytes decoded "
            "(larger: 413). `mediaType` is the data URL's."
        ),
        "type": "object",
        "properties": {
            "type": {"const": "file"},
            "mediaType": {"type": "string"},
            "url": {"type": "string", "maxLength": _MAX_URL},
            "filename": _nullable({"type": "string"}),
            "text": _nullable({"type": "string"}),
        },
        "required": ["type", "mediaType", "url"],
        "oneOf": [_file_of(m) for m in FILE_MEDIA_TYPES],
    }
    content = {
        "title": "ContentPart",
        "description": "`{type: 'text', text}` or `{type: 'file', mediaType, url, filename?}`.",
        "oneOf": [ref("TextPart"), ref("FilePart")],
    }
    return {"TextPart": text, "FilePart": file, "ContentPart": content}


def _plain_image() -> dict[str, Any]:
    """The plain shape's `image`: base64 (its media type `imageMimeType`, else PNG) or a data URL (whose media
    type `imageMimeType` repeats, if given), of an allowed media type. Empty or null: no image."""
    either_null = {"anyOf": [{"type": "null"}, {"enum": list(FILE_MEDIA_TYPES)}]}
    kinds: list[dict[str, Any]] = [{"properties": {"image": {"pattern": f"^{_B64}$"}, "imageMimeType": either_null}}]
    for media_type in FILE_MEDIA_TYPES:
        top, _, sub = media_type.partition("/")
        kinds.append(
            {
                "properties": {
                    "image": {"pattern": f"^data:{top}/{sub}(?:;[^;,]*)*;base64,{_B64}$"},
                    "imageMimeType": {"anyOf": [{"type": "null"}, {"const": media_type}]},
                }
            }
        )
    given = {"properties": {"image": {"type": "string", "minLength": 1}}, "required": ["image"]}
    return {"if": given, "then": {"anyOf": kinds}}


_SOMETHING = {
    "anyOf": [
        {"properties": {"type": {"const": "file"}}, "required": ["type"]},
        {
            "properties": {"type": {"const": "text"}, "text": {"type": "string", "minLength": 1}},
            "required": ["type", "text"],
        },
    ]
}
"""A part that says something: a file, or a text that is not empty."""

_NOT_BLANK_TEXT = {"type": "string", "pattern": NOT_BLANK}

_SEND_SHAPES = ("ChatSendParts", "ChatSendTransport", "ChatSendChatbot", "ChatSendPlain")

_NAMES = {
    "PartsBody": "ChatSendParts",
    "TransportBody": "ChatSendTransport",
    "ChatbotBody": "ChatSendChatbot",
    "PlainBody": "ChatSendPlain",
    "UIMessageIn": "UIMessage",
    "ApproveBody": "ChatApproveInput",
    "Seed003Body": "Seed003MessageInput",
    "CreateChatBody": "CreateChatInput",
    "RegenerateBody": "RegenerateInput",
    "TruncateBody": "TruncateInput",
    "VoteBody": "VoteInput",
    "PreferencesBody": "PreferencesInput",
    "DocumentBody": "DocumentInput",
    "SuggestionView": "Suggestion",
}
"""Struct name -> component name, where the Struct's own name is an implementation detail."""


def _without(*keys: str) -> dict[str, Any]:
    return {"not": {"anyOf": [{"required": [k]} for k in keys]}}


_REFINE: dict[str, dict[str, Any]] = {
    "ChatSendParts": {
        "description": "Seed 000: the message as content parts. `threadId` (or the plain shape's name for it, "
        "`conversationId`; at most one of them) continues a conversation; without, a new one starts.",
        "properties": {
            "parts": {"minItems": 1, "items": ref("ContentPart"), "contains": _SOMETHING},
            "threadId": id_schema(nullable=True),
            "conversationId": id_schema(nullable=True),
        },
        "allOf": [{"not": {"required": ["threadId", "conversationId"]}}, _without("system")],
    },
    "ChatSendTransport": {
        "description": "What the AI SDK's `DefaultChatTransport` sends (`useChat`). The last message is the new "
        "one: a user message, or an assistant message whose tool parts in state `approval-responded` carry "
        "approval decisions. `trigger: regenerate-message` replaces the answer `messageId` (default: the last). "
        "Earlier messages are the client's view; the server's stored history is authoritative.",
        "properties": {
            "id": id_schema("The conversation id."),
            "messages": {"minItems": 1, "items": ref("UIMessage")},
            "messageId": id_schema(nullable=True),
        },
        "allOf": [_without("parts", "message", "system")],
    },
    "ChatSendChatbot": {
        "description": "The Vercel ai-chatbot's body (seed 002): one new user message, the model chosen by "
        "`selectedChatModel` (unknown: 400).",
        "properties": {"id": id_schema("The conversation id."), "message": ref("UserMessage")},
        "allOf": [_without("parts", "system")],
    },
    "ChatSendPlain": {
        "description": "Seed 001: a plain text message (not blank), optionally an image (base64, or a data URL). "
        "The answer streams as plain events with `stream: true` or `Accept: text/event-stream`, else it is one "
        "JSON `PlainAnswer`.",
        "properties": {
            "message": _NOT_BLANK_TEXT,
            "conversationId": id_schema(nullable=True),
            "threadId": id_schema(nullable=True),
        },
        "allOf": [{"not": {"required": ["threadId", "conversationId"]}}, _without("parts", "system")],
    },
    "UIMessage": {
        "description": "An AI SDK UIMessage. Of the new (user) message, the `text` and `file` parts are the "
        "content (as `ContentPart`) and its `id` follows the id grammar; other parts are client state.",
    },
    "ChatApproveInput": {
        "description": "Approve (`approved: true`) or deny a pending tool call of the run `runId`, suspended in "
        "the conversation `threadId`. Without `toolCallId`, the decision is for every pending call.",
        "properties": {
            "runId": id_schema(),
            "threadId": id_schema(),
            "toolCallId": id_schema(nullable=True),
            "messageId": id_schema(nullable=True),
        },
        "required": ["runId", "threadId"],
    },
    "Seed003MessageInput": {
        "properties": {
            "content": _NOT_BLANK_TEXT,
            "userId": {"description": "If given, the caller's own id (else 403)."},
            "workflowId": _nullable(
                {
                    "type": "string",
                    "format": "uuid",
                    "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                    "description": "A `CHAT_WORKFLOWS` preset's id.",
                }
            ),
        },
    },
    "CreateChatInput": {
        "description": "A new seed-003 chat: an optional `title` (1 to 200 characters once whitespace is "
        "collapsed), `modelId` (a configured model) and `chatId` (the id to use).",
        "properties": {
            "title": _nullable({"type": "string", "pattern": NOT_BLANK}),
            "chatId": id_schema(nullable=True),
        },
    },
    "RegenerateInput": {"properties": {"messageId": id_schema(nullable=True)}},
    "TruncateInput": {
        "description": "Keep the `keep` most recent messages; `0` deletes them all.",
        "properties": {"keep": {"minimum": 0}},
    },
    "ConversationPatch": {
        "description": "Rename (`title`, 1 to 200 characters once whitespace is collapsed) or re-share "
        "(`visibility`); at least one of them.",
        "properties": {"title": _nullable({"type": "string", "pattern": NOT_BLANK})},
        "anyOf": [
            {"properties": {"title": {"type": "string"}}, "required": ["title"]},
            {"properties": {"visibility": {"type": "string"}}, "required": ["visibility"]},
        ],
    },
    "VoteInput": {"properties": {"chatId": id_schema(), "messageId": id_schema()}},
    "DocumentInput": {"description": "A new version of a document (other keys, such as `chatId`, are ignored)."},
    "DocumentVersion": {
        "properties": {
            "id": id_schema(),
            "createdAt": {"type": "string", "format": "date-time", "description": "ISO 8601, ms, UTC."},
        }
    },
    "Suggestion": {
        "properties": {
            "id": id_schema(),
            "documentId": id_schema(),
            "documentCreatedAt": {"type": "string", "format": "date-time", "description": "The version's."},
            "createdAt": {"type": "string", "format": "date-time"},
        }
    },
    "PreferencesInput": {
        "description": 'The user\'s defaults, what `provider: "default"` (or a send naming no model) resolves '
        "to. `provider` and `model` must be configured (`GET /api/models`); an absent field is cleared.",
        "properties": {"provider": _nullable({"type": "string", "not": {"const": "default"}})},
    },
}
"""Per component: what the handler checks beyond the Struct, merged into msgspec's schema."""

_SELECTORS = {
    "provider": "A configured provider (`GET /api/models`), or `default` for the user's preference.",
    "model": "A model id (`gpt-4o`) or `provider/model`; the conversation's, else the default, when absent.",
    "mood": "The tone of the answer; the user's preference, else `normal`, when absent.",
    "webSearch": "Offer the model the web_search and web_fetch tools.",
    "channel": "Free text the conversation is filed under (`GET /api/chat/conversations?channel=`).",
}


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if key == "allOf":
            into.setdefault("allOf", []).extend(value)
        elif key == "properties":
            props = into.setdefault("properties", {})
            for name, schema in value.items():
                target = props.setdefault(name, {})
                if "$ref" in schema or "anyOf" in schema or "type" in schema:
                    keep = {k: target[k] for k in ("description", "default") if k in target}
                    if keep.get("default", 0) is None and {"type": "null"} not in schema.get("anyOf", ()):
                        del keep["default"]  # required by the handler, though optional in the Struct
                    target.clear()
                    target.update(keep)
                target.update(schema)
        else:
            into[key] = value


def _rename(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _rename(v) for k, v in node.items()}
        target = out.get("$ref")
        if isinstance(target, str) and target.startswith(REF):
            out["$ref"] = REF + _NAMES.get(target[len(REF) :], target[len(REF) :])
        if "mapping" in out and isinstance(out["mapping"], dict):
            out["mapping"] = {k: REF + _NAMES.get(v[len(REF) :], v[len(REF) :]) for k, v in out["mapping"].items()}
        return out
    if isinstance(node, list):
        return [_rename(v) for v in node]
    return node


def _struct_types() -> list[Any]:
    # Imported here: these modules import this package's decorators (their routes are documented by it).
    from chatstream.api import chats, conversations, documents, preferences, schemas, votes

    return [
        schemas.PartsBody,
        schemas.TransportBody,
        schemas.ChatbotBody,
        schemas.PlainBody,
        schemas.ApproveBody,
        schemas.Seed003Body,
        chats.CreateChatBody,
        conversations.ConversationPatch,
        conversations.RegenerateBody,
        conversations.TruncateBody,
        votes.VoteBody,
        preferences.PreferencesBody,
        documents.DocumentBody,
        documents.DocumentVersion,
        documents.SuggestionView,
        Vote,
        TaggedChunk,
        DataPart,
        bodies.PlainEvent,
        bodies.Seed003Event,
        *(getattr(bodies, name) for name in bodies.__all__ if not name.endswith("Event")),
    ]


@functools.cache
def _build() -> dict[str, Any]:
    types = _struct_types()
    unions = {id(TaggedChunk): "UIChunk", id(bodies.PlainEvent): "PlainEvent", id(bodies.Seed003Event): "Seed003Event"}
    schemas, generated = msgspec.json.schema_components(types, ref_template=REF + "{name}")
    out: dict[str, Any] = {}
    for name, schema in generated.items():
        new = _NAMES.get(name, name)
        schema = _rename(schema)
        schema["title"] = new
        out[new] = schema
    for kind, schema in zip(types, schemas, strict=True):
        if id(kind) in unions:
            out[unions[id(kind)]] = {"title": unions[id(kind)], **_rename(schema)}
    del out["PartIn"]
    # A `data-*` part of any other name (a tool's transient parts) is a chunk too: the union's tag is open.
    out["DataPart"]["properties"]["type"] |= {"pattern": "^data-.+$"}
    out["UIChunk"] = {
        "title": "UIChunk",
        "anyOf": [*out["UIChunk"]["anyOf"], ref("DataPart")],
        "description": "One chunk of the AI SDK UI message stream (`type` names it; a `data-*` type the other "
        "members do not name is a transient `DataPart`).",
    }
    out.update(_content_parts())
    for name, extra in _REFINE.items():
        _merge(out[name], extra)
    for name in _SEND_SHAPES:
        for prop, text in _SELECTORS.items():
            out[name]["properties"][prop]["description"] = text
    out["ChatSendInput"] = {
        "title": "ChatSendInput",
        "description": (
            "One of four shapes, told apart by their keys in this order: `parts` (ChatSendParts, seed 000); "
            "`messages` without `message` (ChatSendTransport, the AI SDK); `message` as an object "
            "(ChatSendChatbot, seed 002); `message` as a string (ChatSendPlain, seed 001). All accept the "
            "selectors `provider`, `model`, `mood`, `webSearch` and `channel`; `system` is refused."
        ),
        "oneOf": [ref(name) for name in _SEND_SHAPES],
    }
    out["UserMessage"] = {
        "title": "UserMessage",
        "description": "A new user message: its `text` and `file` parts (as `ContentPart`) are the content, and "
        "there is some (a file, or a text that is not empty); other parts are ignored.",
        "allOf": [ref("UIMessage")],
        "properties": {
            "id": id_schema(nullable=True),
            "role": {"const": "user"},
            "parts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "anyOf": [
                        ref("ContentPart"),
                        {"not": {"properties": {"type": {"enum": ["text", "file"]}}, "required": ["type"]}},
                    ],
                },
                "contains": _SOMETHING,
            },
        },
        "required": ["role", "parts"],
    }
    out["UIStreamEvent"] = _sse_event(
        "UIStreamEvent",
        ref("UIChunk"),
        "One event of a UI message stream: `data` is a `UIChunk` as JSON, or `[DONE]` last.",
        done=True,
    )
    out["PlainStreamEvent"] = _sse_event(
        "PlainStreamEvent", ref("PlainEvent"), "One event of the plain dialect: `data` is a `PlainEvent` as JSON."
    )
    out["Seed003StreamEvent"] = _sse_event(
        "Seed003StreamEvent", ref("Seed003Event"), "One event of the seed-003 dialect: `data` is a `Seed003Event`."
    )
    out["ChatSendChatbot"]["allOf"].append({"properties": {"message": {"type": "object"}}, "required": ["message"]})
    out["ChatSendPlain"]["allOf"] += [{"properties": {"message": {"type": "string"}}}, _plain_image()]
    out["ChatSendTransport"]["allOf"].append({"required": ["messages"]})
    # Through JSON and back: plain lists and dicts only (a tuple default such as `()` is a JSON array).
    built: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(out))
    return built


def components() -> dict[str, Any]:
    """Every component schema by name (a fresh copy: callers may change it)."""
    return copy.deepcopy(_build())
