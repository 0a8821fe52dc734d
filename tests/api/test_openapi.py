"""The OpenAPI document tells the truth: what each route takes and answers, checked against the routes.

tests/e2e/test_schemathesis.py fuzzes a real server from the same document; these are its structure (valid
OpenAPI 3.1, every body, parameter, error and header where it belongs) and a few answers validated against it.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import msgspec
import pytest
from litestar import Litestar, get
from litestar.openapi import OpenAPIConfig
from litestar.testing import AsyncTestClient
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from chatstream import ChatPlugin, __version__, create_app
from chatstream.api.openapi import hoist, inline
from chatstream.api.openapi.components import components
from chatstream.models import ID_GRAMMAR
from chatstream.protocol import bodies
from chatstream.protocol.chunks import TaggedChunk
from tests.api.conftest import ALICE, make_settings
from tests.support.sse import parse_frames

PARTS = {"parts": [{"type": "text", "text": "mock:tokens=3"}]}
RUN_STARTS = {
    ("/api/chat", "post"),
    ("/api/chat/approve", "post"),
    ("/api/chat/conversations/{conversation_id}/regenerate", "post"),
    ("/api/chats/{chat_id}/messages/stream", "post"),
}
OPS_ROUTES = {"/healthz", "/readyz", "/metrics"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    document: dict[str, Any] = create_app(make_settings()).openapi_schema.to_schema()
    return document


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def validator(doc: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator for the component `name`, its references resolved in the document."""
    registry: Registry[Any] = Registry().with_resource("urn:doc", DRAFT202012.create_resource(doc))
    return jsonschema.Draft202012Validator({"$ref": f"urn:doc#/components/schemas/{name}"}, registry=registry)


def test_the_document_is_valid_openapi_31_named_after_the_package(doc: dict[str, Any]) -> None:
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] == "chatstream" and doc["info"]["version"] == __version__
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
    }


def test_the_standalone_banner_points_at_the_docs() -> None:
    from app.server import banner, standalone_settings

    assert "/schema/openapi.json" in banner(standalone_settings({"DATABASE_URL": "memory://"}))


def test_every_api_operation_needs_the_bearer_token_and_documents_its_401(doc: dict[str, Any]) -> None:
    for path, _method, op in operations(doc):
        if path in OPS_ROUTES:
            assert "security" not in op and "401" not in op["responses"], path
            continue
        assert op["security"] == [{"bearerAuth": []}], path
        assert "WWW-Authenticate" in op["responses"]["401"]["headers"]
        assert "503" in op["responses"], path


def test_errors_are_documented_as_sent(doc: dict[str, Any]) -> None:
    error = doc["components"]["schemas"]["ApiError"]
    assert error["required"] == ["error"] and {"code", "retryAfter", "limit"} <= set(error["properties"])
    for path, method, op in operations(doc):
        for status, response in op["responses"].items():
            if status[0] in "45":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ApiError"} or status in ("502", "503"), (path, status)
        if (path, method) in RUN_STARTS:
            assert {"409", "429", "503"} <= set(op["responses"]), path
            limited = op["responses"]["429"]["headers"]
            assert {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(limited)
            assert op["responses"]["200"]["headers"]["X-Thread-Id"]["required"] is True
        if "requestBody" in op:
            assert "413" in op["responses"], path
    # Nothing of Litestar's own error shape is left.
    assert "status_code" not in str(doc)


def test_the_send_body_is_one_of_the_four_shapes(doc: dict[str, Any]) -> None:
    body = doc["paths"]["/api/chat"]["post"]["requestBody"]
    assert body["required"] is True
    send = resolve(doc, body["content"]["application/json"]["schema"])
    shapes = [ref["$ref"].rsplit("/", 1)[1] for ref in send["oneOf"]]
    assert shapes == ["ChatSendParts", "ChatSendTransport", "ChatSendChatbot", "ChatSendPlain"]
    for word in ("parts", "messages", "message", "in this order"):
        assert word in send["description"]
    schemas = doc["components"]["schemas"]
    assert schemas["ChatSendParts"]["properties"]["parts"]["minItems"] == 1
    assert schemas["ChatSendPlain"]["properties"]["message"]["type"] == "string"
    for name in shapes:
        assert {"provider", "model", "mood", "webSearch", "channel"} <= set(schemas[name]["properties"]), name
    check = validator(doc, "ChatSendInput")
    accepted = [
        PARTS,
        {"id": "c1", "messages": [{"role": "user", "parts": [{"type": "text", "text": "hi"}]}]},
        {"id": "c1", "message": {"role": "user", "parts": [{"type": "text", "text": "hi"}]}, "selectedChatModel": "m"},
        {"message": "hi", "conversationId": "c1", "stream": True},
    ]
    refused = [
        {"parts": []},
        {"message": "   "},
        {"parts": [{"type": "text", "text": "hi"}], "threadId": "bad id"},
        {"message": "hi", "system": "you are"},
        {"parts": [{"type": "file", "mediaType": "image/png", "url": "data:text/plain;base64,aGk="}]},
    ]
    for good in accepted:
        check.validate(good)
    for bad in refused:
        assert not check.is_valid(bad), bad


def test_every_body_route_documents_its_body(doc: dict[str, Any]) -> None:
    bodies_of = {
        (path, method): op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        for path, method, op in operations(doc)
        if "requestBody" in op
    }
    assert bodies_of == {
        ("/api/chat", "post"): "ChatSendInput",
        ("/api/chat/approve", "post"): "ChatApproveInput",
        ("/api/chats/{chat_id}/messages/stream", "post"): "Seed003MessageInput",
        ("/api/chats", "post"): "CreateChatInput",
        ("/api/chat/conversations/{conversation_id}", "patch"): "ConversationPatch",
        ("/api/chat/conversations/{conversation_id}/regenerate", "post"): "RegenerateInput",
        ("/api/chat/conversations/{conversation_id}/truncate", "post"): "TruncateInput",
        ("/api/chat/preferences", "put"): "PreferencesInput",
        ("/api/vote", "patch"): "VoteInput",
        ("/api/document", "post"): "DocumentInput",
    }
    approve = doc["components"]["schemas"]["ChatApproveInput"]
    assert approve["required"] == ["runId", "threadId"]
    assert doc["components"]["schemas"]["ConversationPatch"]["additionalProperties"] is False


def test_parameters_carry_their_constraints(doc: dict[str, Any]) -> None:
    def params(path: str, method: str) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in doc["paths"][path][method]["parameters"]}

    for path, _method, op in operations(doc):
        for param in op.get("parameters", []):
            if param["in"] == "path":
                assert param["required"] and param["schema"]["pattern"] == f"^{ID_GRAMMAR}$", path
    listed = params("/api/chat/conversations", "get")
    assert set(listed) == {"limit", "channel", "visibility", "starting_after", "ending_before"}
    limit = listed["limit"]["schema"]["anyOf"][0]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 20)
    messages = params("/api/chat/messages", "get")
    assert messages["conversationId"]["required"] is True
    assert messages["conversationId"]["schema"]["pattern"] == f"^{ID_GRAMMAR}$"
    assert params("/api/chat", "delete")["id"]["required"] is True
    assert params("/api/vote", "get")["chatId"]["required"] is True
    resume = params("/api/chat/{thread_id}/stream", "get")
    assert {"thread_id", "cursor", "Last-Event-ID"} == set(resume)


def test_streams_are_event_streams_of_their_dialects_chunks(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    resume = doc["paths"]["/api/chat/{thread_id}/stream"]["get"]["responses"]
    assert set(resume) >= {"200", "204"}
    event = resolve(doc, resume["200"]["content"]["text/event-stream"]["schema"])
    assert "Last-Event-ID" in resume["200"]["description"] and "id:" in resume["200"]["description"]
    data = event["properties"]["data"]["anyOf"]
    assert data[0]["const"] == "[DONE]" and data[1]["contentSchema"] == {"$ref": "#/components/schemas/UIChunk"}
    # The UI chunk union is chunks.py's, every tag of it, plus a `data-*` part of any other name (open tag).
    *tagged, data_part = schemas["UIChunk"]["anyOf"]
    assert data_part == {"$ref": "#/components/schemas/DataPart"}
    tags = {t for m in tagged for t in schemas[m["$ref"].rsplit("/", 1)[1]]["properties"]["type"]["enum"]}
    assert tags == {msgspec.inspect.type_info(t).tag for t in TaggedChunk.__args__}  # type: ignore[attr-defined]
    assert schemas["DataPart"]["properties"]["type"]["pattern"] == "^data-.+$"
    seed = resolve(
        doc,
        doc["paths"]["/api/chats/{chat_id}/messages/stream"]["post"]["responses"]["200"]["content"][
            "text/event-stream"
        ]["schema"],
    )
    assert seed["properties"]["data"]["contentSchema"] == {"$ref": "#/components/schemas/Seed003Event"}
    send = doc["paths"]["/api/chat"]["post"]["responses"]["200"]["content"]
    assert set(send) == {"text/event-stream", "application/json"}


async def test_answers_validate_against_the_document(doc: dict[str, Any]) -> None:
    async with AsyncTestClient(create_app(make_settings())) as client:
        sent = await client.post("/api/chat", json=PARTS, headers=ALICE)
        thread = sent.headers["x-thread-id"]
        chunk = validator(doc, "UIChunk")
        for frame in parse_frames(sent.text):
            if frame.data != "[DONE]":
                chunk.validate(frame.data)
        essay = await client.post(  # the document tools' transient data-* parts are UIChunks too
            "/api/chat", json={"parts": [{"type": "text", "text": "Write an essay about rivers"}]}, headers=ALICE
        )
        essay_frames = [f.data for f in parse_frames(essay.text) if f.data != "[DONE]"]
        assert any(f["type"] == "data-textDelta" for f in essay_frames)
        for data in essay_frames:
            chunk.validate(data)
        plain = await client.post("/api/chat", json={"message": "mock:tokens=2", "stream": True}, headers=ALICE)
        event = validator(doc, "PlainEvent")
        for frame in parse_frames(plain.text):
            event.validate(frame.data)
            msgspec.convert(frame.data, bodies.PlainEvent)
        answer = await client.post("/api/chat", json={"message": "mock:tokens=2"}, headers=ALICE)
        validator(doc, "PlainAnswer").validate(answer.json())
        answers = {
            "ConversationPage": await client.get("/api/chat/conversations", headers=ALICE),
            "MessagePage": await client.get(f"/api/chat/messages?conversationId={thread}", headers=ALICE),
            "StopResult": await client.post(f"/api/chat/{thread}/stop", headers=ALICE),
            "PreferencesView": await client.get("/api/chat/preferences", headers=ALICE),
            "ModelList": await client.get("/api/models", headers=ALICE),
            "Truncated": await client.post(
                f"/api/chat/conversations/{thread}/truncate", json={"keep": 1}, headers=ALICE
            ),
            "ApiError": await client.get("/api/chat/messages", headers=ALICE),
            "Readiness": await client.get("/readyz"),
        }
        for name, response in answers.items():
            validator(doc, name).validate(response.json())
            msgspec.convert(response.json(), getattr(bodies, name))
        unauthorized = await client.get("/api/chat/conversations")
        assert unauthorized.status_code == 401
        validator(doc, "ApiError").validate(unauthorized.json())


@get("/me")
async def me() -> dict[str, str]:
    return {"me": "host"}


async def test_mounted_in_a_host_the_paths_and_operations_are_right() -> None:
    host = Litestar(
        route_handlers=[me],
        plugins=[ChatPlugin(make_settings(), path="/chat")],
        openapi_config=OpenAPIConfig(title="host", version="9"),
    )
    async with AsyncTestClient(host) as client:
        doc = (await client.get("/schema/openapi.json")).json()
    validate(doc)
    assert doc["info"]["title"] == "host"
    ours = [(p, op) for p, item in doc["paths"].items() for op in item.values() if p.startswith("/chat/")]
    assert {p for p, _ in ours} >= {"/chat/api/chat", "/chat/api/chat/{thread_id}/stream", "/chat/healthz"}
    send = doc["paths"]["/chat/api/chat"]["post"]
    assert send["operationId"] == "chat_sendMessage"
    # Complete without our components: the schemas travel inline, and bearerAuth is declared for the host.
    assert send["requestBody"]["content"]["application/json"]["schema"]["x-component"] == "ChatSendInput"
    assert "bearerAuth" in doc["components"]["securitySchemes"]
    assert "/me" in doc["paths"] and "security" not in doc["paths"]["/me"]["get"]


def test_two_mounts_in_one_host_have_distinct_operation_ids() -> None:
    host = Litestar(plugins=[ChatPlugin(make_settings(), path="/a"), ChatPlugin(make_settings(), path="/b")])
    ids = [op["operationId"] for item in host.openapi_schema.to_schema()["paths"].values() for op in item.values()]
    assert "a_sendMessage" in ids and "b_sendMessage" in ids and len(ids) == len(set(ids))


def test_inline_and_hoist_are_inverses() -> None:
    schemas = components()
    document = {"paths": {"/x": {"get": {"responses": {"200": {"schema": {"$ref": "#/components/schemas/UIChunk"}}}}}}}
    inlined = inline(document, schemas)
    assert "$ref" not in str(inlined)
    hoisted = hoist(inlined)
    assert hoisted["paths"] == document["paths"]
    for name, schema in hoisted["components"]["schemas"].items():
        assert schema == schemas[name], name


async def test_what_schemathesis_found_stays_fixed() -> None:
    """Each a finding of tests/e2e/test_schemathesis.py, fixed in the route (or its wiring)."""
    async with AsyncTestClient(create_app(make_settings())) as client:
        # A 500: an image that is not ASCII broke the base64 check.
        bad_image = await client.post("/api/chat", json={"message": "hi", "image": "\u00e7\u0010"}, headers=ALICE)
        assert bad_image.status_code == 400 and bad_image.json() == {"error": "file data URL is not valid base64"}
        # Regenerate streamed its answer under `content-type: application/json`.
        sent = await client.post("/api/chat", json=PARTS, headers=ALICE)
        thread = sent.headers["x-thread-id"]
        again = await client.post(f"/api/chat/conversations/{thread}/regenerate", json={}, headers=ALICE)
        assert again.status_code == 200 and again.headers["content-type"].startswith("text/event-stream")
        # `OPTIONS` named the methods of the first handler of a path only.
        for path, allow in (
            ("/api/chat", "DELETE, OPTIONS, POST"),
            ("/api/vote", "GET, OPTIONS, PATCH"),
            ("/api/chat/preferences", "GET, OPTIONS, PUT"),
            (f"/api/chat/conversations/{thread}", "DELETE, OPTIONS, PATCH"),
        ):
            assert (await client.options(path)).headers["allow"] == allow, path
        # A malformed `?cursor=` passed unseen beside a `Last-Event-ID`.
        bad_cursor = await client.get(
            f"/api/chat/{thread}/stream?cursor={'a' * 65}", headers={**ALICE, "Last-Event-ID": "1"}
        )
        assert bad_cursor.status_code == 400 and bad_cursor.json() == {"error": "invalid cursor"}
        # `17.0` is an integer in JSON Schema (and JSON): `keep` takes it.
        kept = await client.post(f"/api/chat/conversations/{thread}/truncate", json={"keep": 1.0}, headers=ALICE)
        assert kept.status_code == 200 and kept.json()["kept"] == 1
