"""Request decoding (chatstream/api/schemas.py): the id grammar, the JSON depth limit, whole data URLs, the
continuation field, and a fuzz of every body through `parse_json` and `parse_chat_body`."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chatstream.api.schemas import MAX_JSON_DEPTH, check_data_url, parse_chat_body, parse_json
from chatstream.errors import AppError, BadRequestError, PayloadTooLargeError
from chatstream.models import ChatRequest, is_valid_id, new_id

# Ids the grammar refuses: non-ASCII, header injection, NUL, a path separator, a trailing newline (which a
# `^...$` regex would let through), the empty string, and one past the length limit.
BAD_IDS = ["💥", "a\r\nSet-Cookie: x=1", "\u0000", "a/b", "a\n", "", "x" * 129, "x" * 5000, "{c:1}", "a b", "é"]
GOOD_IDS = ["a", "x" * 128, "thread-1", "user:42", "A.b_c-d:E", str(uuid.uuid4())]


def text(value: str = "hi") -> list[dict[str, Any]]:
    return [{"type": "text", "text": value}]


def data_url(media_type: str, payload: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(payload).decode()}"


def parse(body: dict[str, Any], **kwargs: Any) -> ChatRequest:
    return parse_chat_body(parse_json(json.dumps(body).encode()), accept_sse=False, **kwargs)


# --- ids -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", GOOD_IDS)
def test_grammar_accepts(value: str) -> None:
    assert is_valid_id(value)


@pytest.mark.parametrize("value", BAD_IDS)
def test_grammar_refuses(value: str) -> None:
    assert not is_valid_id(value)


def test_server_generated_ids_match_the_grammar() -> None:
    for prefix in ("", "run-", "msg-", "apv-"):
        ids = [new_id(prefix) for _ in range(1000)]
        assert all(is_valid_id(i) for i in ids), prefix


def _bodies_with(bad: str) -> list[tuple[str, dict[str, Any]]]:
    """(field the error must name, body) for every id-carrying field of the four shapes."""
    user = {"id": "u1", "role": "user", "parts": text()}
    approval_part = {
        "type": "tool-transfer",
        "toolCallId": "call-1",
        "state": "approval-responded",
        "approval": {"id": "apv-1", "approved": True},
    }

    def assistant(**changes: Any) -> dict[str, Any]:
        part = {**approval_part, **changes}
        if "approval" in changes:
            part["approval"] = {**approval_part["approval"], **changes["approval"]}  # type: ignore[dict-item]
        return {"id": "m1", "role": "assistant", "parts": [part]}

    return [
        ("threadId", {"parts": text(), "threadId": bad}),
        ("conversationId", {"parts": text(), "conversationId": bad}),
        ("conversationId", {"message": "hi", "conversationId": bad}),
        ("threadId", {"message": "hi", "threadId": bad}),
        ("id", {"id": bad, "messages": [user]}),
        ("messageId", {"id": "c1", "messages": [user], "messageId": bad}),
        ("messages[].id", {"id": "c1", "messages": [{**user, "id": bad}]}),
        ("toolCallId", {"id": "c1", "messages": [user, assistant(toolCallId=bad)]}),
        ("approval.id", {"id": "c1", "messages": [user, assistant(approval={"id": bad})]}),
        ("id", {"id": bad, "message": user, "selectedChatModel": "m"}),
        ("message.id", {"id": "c1", "message": {**user, "id": bad}, "selectedChatModel": "m"}),
    ]


@pytest.mark.parametrize("bad", [*BAD_IDS[:5], BAD_IDS[7]])
def test_every_body_id_field_is_checked_and_named(bad: str) -> None:
    for field, body in _bodies_with(bad):
        with pytest.raises(BadRequestError) as info:
            parse(body)
        assert info.value.message == f"invalid {field}", (field, body)


def test_good_ids_pass_every_field() -> None:
    for _, body in _bodies_with("Good-id_1.2:3"):
        assert isinstance(parse(body), ChatRequest)


def test_a_non_string_approval_reason_is_refused() -> None:
    part = {
        "type": "tool-t",
        "toolCallId": "call-1",
        "state": "approval-responded",
        "approval": {"id": "apv-1", "approved": True, "reason": {"x": 1}},
    }
    body = {"id": "c1", "messages": [{"id": "m1", "role": "assistant", "parts": [part]}]}
    with pytest.raises(BadRequestError, match=r"approval\.reason"):
        parse(body)


# --- one continuation field --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"parts": text(), "threadId": "c1"},
        {"parts": text(), "conversationId": "c1"},
        {"message": "hi", "conversationId": "c1"},
        {"message": "hi", "threadId": "c1"},
        {"message": "hi", "threadId": "c1", "conversationId": "c1"},
    ],
)
def test_thread_id_and_conversation_id_mean_the_same_in_both_shapes(body: dict[str, Any]) -> None:
    assert parse(body).conversation_id == "c1"


def test_thread_id_and_conversation_id_that_disagree_are_refused() -> None:
    for body in (
        {"parts": text(), "threadId": "a", "conversationId": "b"},
        {"message": "x", "threadId": "a", "conversationId": "b"},
    ):
        with pytest.raises(BadRequestError, match="different conversations"):
            parse(body)


# --- JSON depth ----------------------------------------------------------------------------------------------


def nested(depth: int, inner: str = "1") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


def test_depth_limit_is_exactly_64() -> None:
    assert MAX_JSON_DEPTH == 64
    assert parse_json(nested(64)) is not None
    assert parse_json(b'{"a":' * 63 + b"[1]" + b"}" * 63) is not None
    for body in (nested(65), b'{"a":' * 64 + b"[1]" + b"}" * 64, nested(5000), nested(200_000)):
        with pytest.raises(BadRequestError, match="JSON nested too deeply"):
            parse_json(body)


def test_depth_counts_nesting_not_brackets() -> None:
    # Many brackets, shallow: wide arrays, and brackets inside strings, are not depth.
    wide = json.dumps([[i] for i in range(1000)]).encode()
    assert len(parse_json(wide)) == 1000
    in_text = json.dumps({"message": "[" * 10_000 + "{" * 10_000}).encode()
    assert parse_json(in_text)["message"].startswith("[[[")
    # The deep branch is found wherever it hides: after many shallow siblings, inside an object.
    hidden = b'{"a":[' + b"[1]," * 500 + nested(64) + b"]}"
    with pytest.raises(BadRequestError, match="JSON nested too deeply"):
        parse_json(hidden)


def test_large_bodies_are_walked_not_counted() -> None:
    # Past the counting threshold the decoded body is walked: a big string beside a deep branch is still
    # caught, and a big string beside a shallow one passes.
    padding = b'"' + b"A" * 40_000 + b'"'
    with pytest.raises(BadRequestError, match="JSON nested too deeply"):
        parse_json(b"[" + padding + b"," + nested(64) + b"]")
    assert len(parse_json(b"[" + padding + b"," + nested(63) + b"]")) == 2


def test_malformed_json_is_a_400() -> None:
    for body in (b"", b"{", b"\xff\xfe", b'{"a": nan}', b"[1,]", b'"\\ud800"x'):
        with pytest.raises(BadRequestError):
            parse_json(body)


# --- data URLs -----------------------------------------------------------------------------------------------


def test_base64_is_validated_whole() -> None:
    good = base64.b64encode(b"\x89PNG" + bytes(6000)).decode()
    check_data_url(f"data:image/png;base64,{good}", "image/png")
    broken_late = good[:5000] + "!!!!" + good[5004:]  # valid for the first 4 KB, broken after
    with pytest.raises(BadRequestError, match="not valid base64"):
        check_data_url(f"data:image/png;base64,{broken_late}", "image/png")
    with pytest.raises(BadRequestError, match="not valid base64"):
        check_data_url(f"data:image/png;base64,{good[:-1]}", "image/png")  # truncated: bad padding


@pytest.mark.parametrize(
    "media_type", ["image/svg+xml", "text/html", "application/octet-stream", "audio/wav", "application/x-sh", ""]
)
def test_media_types_outside_the_allow_list_are_refused(media_type: str) -> None:
    with pytest.raises(BadRequestError, match="is not allowed"):
        check_data_url(data_url(media_type, b"x"), media_type)


def test_the_part_media_type_must_agree_with_the_data_url() -> None:
    check_data_url(data_url("text/plain;charset=utf-8", b"x"), "Text/Plain")  # parameters and case aside
    with pytest.raises(BadRequestError, match="does not match"):
        check_data_url(data_url("image/png", b"x"), "image/jpeg")


def test_the_allow_list_comes_from_the_caller() -> None:
    body = {"parts": [{"type": "file", "mediaType": "image/png", "url": data_url("image/png", b"x")}]}
    assert parse(body).parts[0].media_type == "image/png"
    with pytest.raises(BadRequestError, match="is not allowed"):
        parse(body, media_types=("application/pdf",))


def test_plain_image_is_validated_like_a_file_part() -> None:
    jpeg = data_url("image/jpeg", b"\xff\xd8\xff")
    (_, image) = parse({"message": "look", "image": jpeg}).parts
    assert image.media_type == "image/jpeg"  # taken from the data URL, not defaulted to png
    raw = base64.b64encode(b"\x89PNG").decode()
    assert parse({"message": "look", "image": raw}).parts[1].url == f"data:image/png;base64,{raw}"
    for bad in (
        {"image": raw, "imageMimeType": "text/html"},
        {"image": raw + "@@"},
        {"image": jpeg, "imageMimeType": "image/png"},
    ):
        with pytest.raises(BadRequestError):
            parse({"message": "look", **bad})


def test_decoded_size_is_checked() -> None:
    from chatstream.api import schemas

    payload = base64.b64encode(bytes(schemas.MAX_FILE_BYTES + 3)).decode()
    with pytest.raises(PayloadTooLargeError):
        check_data_url(f"data:image/png;base64,{payload}", "image/png")


# --- fuzz: no body produces anything but a ChatRequest or a 4xx -----------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)
_ids = st.sampled_from(["c1", "m1", "call-1", "apv-1", "", "💥", "a\r\nb"]) | st.text(max_size=10)
_keys = [
    "parts",
    "threadId",
    "conversationId",
    "id",
    "messages",
    "message",
    "trigger",
    "messageId",
    "selectedChatModel",
    "selectedVisibilityType",
    "provider",
    "model",
    "mood",
    "webSearch",
    "channel",
    "image",
    "imageMimeType",
    "stream",
    "system",
]
_part = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["text", "file", "tool-x", "step-start", 1]),
        "text": st.text(max_size=10) | _json,
        "mediaType": st.sampled_from(["image/png", "text/html", ""]) | _json,
        "url": st.sampled_from(["data:image/png;base64,AAAA", "data:image/png;base64,A!", "http://x"]) | _json,
        "toolCallId": _ids | _json,
        "state": st.sampled_from(["approval-responded", "output-available"]),
        "approval": st.fixed_dictionaries({}, optional={"id": _ids | _json, "approved": _json, "reason": _json}),
    },
)
_message = st.fixed_dictionaries(
    {},
    optional={
        "id": _ids | _json,
        "role": st.sampled_from(["user", "assistant", "system", "tool"]),
        "parts": st.lists(_part, max_size=3) | _json,
        "metadata": _json,
    },
)
_value = _json | _ids | _message | st.lists(_message, max_size=3) | st.lists(_part, max_size=3)
_selectors = {
    "provider": st.sampled_from(["mock", "default"]) | _json,
    "model": st.text(max_size=5) | _json,
    "mood": st.sampled_from(["serious", "friendly", "normal", "angry"]),
    "webSearch": _json,
    "channel": _json,
}
_approval_part = st.fixed_dictionaries(
    {
        "type": st.just("tool-transfer"),
        "state": st.just("approval-responded"),
        "approval": st.fixed_dictionaries({"approved": _json}, optional={"id": _ids | _json, "reason": _json}),
    },
    optional={"toolCallId": _ids | _json},
)
_ui_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant"]), "parts": st.lists(_part | _approval_part, min_size=1, max_size=3)},
    optional={"id": _ids | _json},
)
# One skeleton per shape, so most examples get past the shape checks to the fields behind them.
_shapes = [
    st.fixed_dictionaries(
        {"parts": st.lists(_part, min_size=1, max_size=3)},
        optional={"threadId": _ids | _json, "conversationId": _ids | _json, **_selectors},
    ),
    st.fixed_dictionaries(
        {"id": _ids | _json, "messages": st.lists(_ui_message, min_size=1, max_size=3)},
        optional={"trigger": _json, "messageId": _ids | _json, **_selectors},
    ),
    st.fixed_dictionaries(
        {"id": _ids | _json, "message": _ui_message, "selectedChatModel": st.text(max_size=5) | _json},
        optional={"selectedVisibilityType": st.sampled_from(["public", "private", "x"]), "messages": _json},
    ),
    st.fixed_dictionaries(
        {"message": st.text(max_size=10) | _json},
        optional={
            "conversationId": _ids | _json,
            "threadId": _ids | _json,
            "image": st.sampled_from(["AAAA", "A!", "data:image/png;base64,AAAA", "data:text/html;base64,AAAA"]),
            "imageMimeType": st.sampled_from(["image/png", "image/svg+xml"]) | _json,
            "stream": _json,
            **_selectors,
        },
    ),
]
_body = st.one_of(*_shapes, st.dictionaries(st.sampled_from(_keys), _value, max_size=8), _json)


@settings(max_examples=600, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_body, st.booleans())
def test_fuzz_any_body_is_a_chat_request_or_a_4xx(body: Any, accept_sse: bool) -> None:
    raw = json.dumps(body).encode()
    refused: AppError | None = None
    try:
        request = parse_chat_body(parse_json(raw), accept_sse=accept_sse)
    except AppError as exc:
        refused = exc
    if refused is not None:
        assert 400 <= refused.status_code < 500, refused
        return
    # What passed is well typed all the way down (nothing a later layer could trip over) ...
    assert msgspec.convert(msgspec.to_builtins(request), ChatRequest) == request
    # ... and names only ids in the grammar.
    for value in (request.conversation_id, request.message_id):
        assert value is None or is_valid_id(value)
    for decision in request.approvals:
        assert decision.tool_call_id is None or is_valid_id(decision.tool_call_id)


@settings(max_examples=300, database=None, deadline=None)
@given(
    st.binary(max_size=200)
    | st.builds(lambda d, s: s * d, st.integers(0, 3000), st.sampled_from([b"[", b'{"a":', b'[{"b":']))
)
def test_fuzz_any_bytes_decode_or_400(raw: bytes) -> None:
    with contextlib.suppress(BadRequestError):  # anything else propagates and fails the test
        parse_json(raw)
