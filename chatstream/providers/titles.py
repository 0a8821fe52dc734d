"""Conversation titles: a short one from the conversation's own model, with a heuristic fallback.

The title call goes through the same `Provider` as the answer (no second key to configure), asks for a few
words with a small output budget, and gives up quickly: a title is a nicety, never worth delaying anything.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from chatstream.errors import AppError
from chatstream.models import Message, MessagePart
from chatstream.providers.base import ModelText, ProviderRequest

if TYPE_CHECKING:
    from chatstream.providers.base import Provider

__all__ = ["MAX_TITLE_CHARS", "generate_title", "heuristic_title"]

MAX_TITLE_CHARS = 60
_PROMPT = (
    "You write titles for chat conversations. Reply with a title of at most six words that summarises the "
    "user's message. No quotes, no punctuation at the end, no preamble. Use the language of the message."
)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb*#"  # ASCII, typographic and guillemet quotes
_LABEL = re.compile(r"^\s*(?:title|titre|titel)\s*[:\-\u2013]\s*", re.IGNORECASE)
_DIRECTIVE = re.compile(r"\bmock:\S+")


async def generate_title(provider: Provider, model: str, first_user_text: str, timeout: float = 10.0) -> str:  # noqa: ASYNC109
    # `timeout` is part of the contract the run engine calls; the caller has no deadline of its own to share.
    """Ask the model for a short title (≤ 60 chars, quotes stripped); the heuristic title when it fails,
    is slow, or says nothing usable. Never raises for an upstream problem."""
    fallback = heuristic_title(first_user_text)
    if provider.name == "mock" or not first_user_text.strip():
        return fallback  # the mock would echo the prompt: the heuristic is the better title
    # Reasoning variants would spend the small budget thinking; the plain model titles as well.
    model = model.removesuffix("-thinking")
    request = ProviderRequest(
        model=model,
        system=_PROMPT,
        messages=(
            Message(
                id="title",
                conversation_id="title",
                role="user",
                parts=(MessagePart(type="text", text=first_user_text[:2000]),),
            ),
        ),
        max_output_tokens=32,
    )
    pieces: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            async for event in provider.stream(request):
                if isinstance(event, ModelText):
                    pieces.append(event.text)
    except (AppError, TimeoutError):
        if not pieces:
            return fallback
    return clean_title("".join(pieces)) or fallback


def clean_title(raw: str) -> str:
    """The first non-empty line, without quotes, labels or trailing punctuation, cut to 60 characters."""
    line = next((ln for ln in raw.splitlines() if ln.strip(_QUOTES + " \t")), "")
    line = _LABEL.sub("", line).strip().strip(_QUOTES).strip().rstrip(".!?:;,")
    return _shorten(" ".join(line.split()))


def heuristic_title(text: str) -> str:
    """The first sentence (or line) of the message, trimmed to 60 characters at a word boundary."""
    text = " ".join(_DIRECTIVE.sub("", text).split())
    if not text:
        return "New chat"
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".!?:;, ")
    title = _shorten(sentence) or "New chat"
    return title[0].upper() + title[1:]


def _shorten(text: str) -> str:
    if len(text) <= MAX_TITLE_CHARS:
        return text
    cut = text[: MAX_TITLE_CHARS - 1]
    if " " in cut[MAX_TITLE_CHARS // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:-") + "…"
