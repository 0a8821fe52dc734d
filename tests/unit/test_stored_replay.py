"""A stored answer replayed as chunks (an idempotent retry after its stream expired) keeps every part whole."""

from __future__ import annotations

import msgspec

from chatstream.api.streaming import stored_chunks
from chatstream.models import Message, MessagePart


def test_reasoning_parts_keep_their_own_metadata_even_without_text() -> None:
    redacted = {"anthropic": {"redactedData": "EqAB..."}}
    signed = {"anthropic": {"signature": "sig-1"}}
    message = Message(
        id="m1",
        conversation_id="c",
        role="assistant",
        parts=(
            MessagePart(type="step-start"),
            MessagePart(type="reasoning", text="", provider_metadata=redacted),
            MessagePart(type="reasoning", text="", provider_metadata={"anthropic": {"redactedData": "second"}}),
            MessagePart(type="reasoning", text="why", provider_metadata=signed),
            MessagePart(type="text", text="answer"),
        ),
        finish_reason="stop",
    )
    frames = [msgspec.to_builtins(c) for c in stored_chunks(message)]
    ends = [f for f in frames if f["type"] == "reasoning-end"]
    assert [e.get("providerMetadata") for e in ends] == [redacted, {"anthropic": {"redactedData": "second"}}, signed]
    assert [f["delta"] for f in frames if f["type"] == "reasoning-delta"] == ["why"]
    assert len({f["id"] for f in frames if f["type"] == "reasoning-start"}) == 3
