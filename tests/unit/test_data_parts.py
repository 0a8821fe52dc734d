"""Transient `data-*` parts (`DataPart`): encoded once as the AI SDK reads them, never folded into the stored
message (live or recovered), dropped by the plain and seed-003 dialects, kept in order on the UI stream."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest

from chatstream.protocol.chunks import (
    Chunk,
    DataPart,
    DataStatus,
    FinishStep,
    Start,
    StartStep,
    TextDelta,
    TextEnd,
    TextStart,
    ToolInputAvailable,
    ToolOutputAvailable,
    decode_chunk,
    encode_chunk,
)
from chatstream.protocol.dialects import PlainDialect, Seed003Dialect, UIDialect
from chatstream.runs.assembly import ChunkAssembler

pytestmark = pytest.mark.timeout(10)


def test_a_data_part_encodes_as_the_ai_sdk_reads_it_and_decodes_back() -> None:
    part = DataPart(type="data-textDelta", data="Hello")
    raw = encode_chunk(part)
    assert msgspec.json.decode(raw) == {"type": "data-textDelta", "data": "Hello", "transient": True}
    assert decode_chunk(raw) == part
    assert part.name == "textDelta"
    # The named data chunks still decode as themselves; `data: null` (data-clear) survives the round trip.
    assert decode_chunk(encode_chunk(DataStatus(data={"status": "running"}))) == DataStatus(data={"status": "running"})
    assert decode_chunk(encode_chunk(DataPart(type="data-clear", data=None))) == DataPart(type="data-clear", data=None)


def test_only_data_types_fall_back_to_a_data_part() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_chunk(b'{"type":"text-nope","id":"x"}')
    with pytest.raises(msgspec.ValidationError):
        decode_chunk(b'{"type":"data-","data":1}')
    with pytest.raises(ValueError, match="data-<name>"):
        DataPart(type="textDelta", data="x")


STREAM: list[Chunk] = [
    Start(message_id="m1"),
    StartStep(),
    ToolInputAvailable(tool_call_id="c1", tool_name="createDocument", input={"title": "T", "kind": "text"}),
    DataPart(type="data-kind", data="text"),
    DataPart(type="data-id", data="doc-1"),
    DataPart(type="data-title", data="T"),
    DataPart(type="data-clear", data=None),
    DataPart(type="data-textDelta", data="One "),
    DataPart(type="data-textDelta", data="two."),
    DataPart(type="data-finish", data=None),
    ToolOutputAvailable(tool_call_id="c1", output={"id": "doc-1"}),
    FinishStep(),
    StartStep(),
    TextStart(id="t1"),
    TextDelta(id="t1", delta="Done"),
    DataPart(type="data-suggestion", data={"id": "s1"}),  # even inside an open text part
    TextDelta(id="t1", delta="."),
    TextEnd(id="t1"),
    FinishStep(),
]


def _fold(chunks: Sequence[Chunk]) -> ChunkAssembler:
    assembler = ChunkAssembler("c")
    for chunk in chunks:
        assembler.apply(decode_chunk(encode_chunk(chunk)))  # as a recovery reads them back from the buffer
    return assembler


def test_data_parts_are_not_stored_and_leave_the_other_parts_as_they_were() -> None:
    with_data = _fold(STREAM)
    without = _fold([c for c in STREAM if not isinstance(c, DataPart)])
    assert with_data.builder is not None and without.builder is not None
    message = with_data.builder.message()
    assert message == without.builder.message()
    assert [p.type for p in message.parts] == ["step-start", "tool-createDocument", "step-start", "text"]
    assert message.parts[-1].text == "Done."  # the open text part was not split by the data part


def test_the_ui_stream_keeps_data_parts_in_order_and_the_other_dialects_drop_them() -> None:
    frames = [encode_chunk(c) for c in STREAM]
    ui = UIDialect()
    sent = [ui.entry(str(i), f) for i, f in enumerate(frames)]
    deltas = [msgspec.json.decode(f)["data"] for f in frames if b"data-textDelta" in f]
    assert deltas == ["One ", "two."]
    assert all(s is not None and f in s for s, f in zip(sent, frames, strict=True))
    for dialect in (PlainDialect(), Seed003Dialect()):
        out = [dialect.entry(str(i), f) for i, f in enumerate(frames) if b'"type":"data-' in f]
        assert out == [None] * 8
