"""The server's system prompt, per mood (SPEC §3.1: `serious`, `friendly`, `normal`). Clients never send one."""

from __future__ import annotations

__all__ = ["MOODS", "system_prompt"]

_BASE = (
    "You are a helpful assistant in a chat application. Answer accurately and say so when you are not sure. "
    "Format answers in Markdown when it helps (lists, code blocks, tables); keep short answers short."
)

MOODS: dict[str, str] = {
    "serious": (
        "Tone: serious and precise. Be concise and factual, avoid jokes, emoji and small talk, and state "
        "assumptions and caveats explicitly."
    ),
    "friendly": (
        "Tone: warm, friendly and encouraging. Use a conversational style; light humour and the occasional "
        "emoji are welcome, but never at the expense of accuracy."
    ),
    "normal": "Tone: neutral, clear and natural.",
}

_WEB = (
    "You can search the web (`web_search`) and read pages (`web_fetch`). Prefer them for recent events, "
    "facts that may have changed and anything you would otherwise guess; cite the pages you used as links."
)


def system_prompt(mood: str, web_search: bool) -> str:
    """The system prompt for a request; an unknown mood gets the `normal` tone."""
    parts = [_BASE, MOODS.get(mood, MOODS["normal"])]
    if web_search:
        parts.append(_WEB)
    return "\n\n".join(parts)
