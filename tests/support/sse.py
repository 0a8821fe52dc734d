"""A small SSE reader for tests: frames with their `id:` and decoded `data:` JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx


@dataclass
class Frame:
    id: str | None
    data: Any
    """Decoded JSON, or the raw string for `[DONE]`."""

    @property
    def type(self) -> str | None:
        return self.data.get("type") if isinstance(self.data, dict) else None


def parse_frames(text: str) -> list[Frame]:
    frames = []
    for block in text.split("\n\n"):
        fid, data = None, []
        for line in block.split("\n"):
            if line.startswith("id: "):
                fid = line[4:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if data:
            raw = "\n".join(data)
            frames.append(Frame(fid, raw if raw == "[DONE]" else json.loads(raw)))
    return frames


async def iter_frames(response: httpx.Response) -> AsyncIterator[Frame]:
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            for frame in parse_frames(block + "\n\n"):
                yield frame


def text_of(frames: list[Frame]) -> str:
    return "".join(f.data["delta"] for f in frames if f.type == "text-delta")
