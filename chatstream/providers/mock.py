"""`mock`: a deterministic, scriptable provider for demos, tests and benchmarks.

Two ways to drive it:

* a script: `MockProvider(script=[turn, turn, ...])`, each turn a list of `ModelEvent`s (or a callable
  taking the `ProviderRequest`), consumed one per model call;
* directives in the last user message, so a client of a real server process can ask for behaviour:
  `mock:tokens=500` (answer length in tokens), `mock:delay=20` (ms per token), `mock:reasoning`,
  `mock:tool=getWeather` with `mock:args={"city":"Paris"}` (JSON, no spaces) and `mock:steps=3` (call
  the tool in that many successive steps), `mock:fail=10` (break after 10 tokens), `mock:error=rate_limit`
  (fail before the first token).

Without a `mock:tool` directive, a message asking for an essay, a document or a spreadsheet ("Write an essay
about rivers") calls `createDocument` when it is offered (the document tools' demo). A request for structured
output (`ProviderRequest.output`) is answered with a JSON object matching its schema, its strings made from the
prompt's sentences.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

from chatstream.errors import ProviderRateLimitError, ProviderResponseError
from chatstream.models import Message, Usage
from chatstream.providers.base import (
    ModelEvent,
    ModelFinish,
    ModelReasoning,
    ModelText,
    ModelToolCall,
    ModelToolCallDelta,
    ModelToolCallStart,
    ModelUsage,
    ProviderRequest,
)

__all__ = ["MOCK_MODELS", "MockProvider"]

MOCK_MODELS = ("mock-1", "mock-thinking")

Turn = Sequence[ModelEvent] | Callable[[ProviderRequest], Iterable[ModelEvent]]

_DIRECTIVE = re.compile(r"mock:([a-z_]+)(?:=(\S+))?")


class MockProvider:
    """Scripted or directive-driven fake model. Never chosen when a real provider is configured."""

    name = "mock"

    def __init__(
        self,
        *,
        delay: float = 0.0,
        script: Sequence[Turn] | None = None,
        name: str = "mock",
        generates_images: bool = False,
    ) -> None:
        self.name = name
        self.delay = delay
        self.generates_images = generates_images
        self._script: deque[Turn] = deque(script or ())
        self.requests: list[ProviderRequest] = []
        """Every request received, for tests to inspect."""

    def enqueue(self, *turns: Turn) -> None:
        self._script.extend(turns)

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ModelEvent]:
        self.requests.append(request)
        if self._script:
            turn = self._script.popleft()
            events = list(turn(request) if callable(turn) else turn)
            for event in events:
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield event
            return
        async for event in self._directed(request):
            yield event

    async def aclose(self) -> None:
        return None

    async def _directed(self, request: ProviderRequest) -> AsyncIterator[ModelEvent]:
        prompt = _last_user_text(request.messages)
        opts = {m.group(1): m.group(2) or "" for m in _DIRECTIVE.finditer(prompt)}
        delay_ms = _number(opts.get("delay"))
        delay = delay_ms / 1000 if delay_ms is not None else self.delay
        if opts.get("error") == "rate_limit":
            raise ProviderRateLimitError("mock upstream rate limit", provider=self.name, retry_after=3)
        if opts.get("error"):
            raise ProviderResponseError(f"mock upstream error: {opts['error']}", provider=self.name)

        tool = opts.get("tool")
        steps = int(_number(opts.get("steps")) or 1)
        calls_so_far = _tool_results_in_progress(request.messages)
        if tool and request.tools and calls_so_far < steps:
            async for event in self._tool_call(tool, opts.get("args", "{}"), calls_so_far, delay):
                yield event
            return
        if request.output is not None:
            text = json.dumps(_instance(request.output.schema, _sentences(prompt), ""))
            for piece in re.findall(r".{1,16}", text, re.S):
                if delay:
                    await asyncio.sleep(delay)
                yield ModelText(text=piece)
            yield ModelUsage(usage=Usage(input_tokens=_count_words(request.messages), output_tokens=len(text) // 4))
            yield ModelFinish(reason="stop")
            return
        document = _document_request(prompt) if not tool and calls_so_far == 0 else None
        if document is not None and any(t.name == "createDocument" for t in request.tools):
            async for event in self._tool_call("createDocument", json.dumps(document), calls_so_far, delay):
                yield event
            return

        if "reasoning" in opts:
            for word in ("Let", " me", " think", " about", " that."):
                yield ModelReasoning(text=word)
        fail = _number(opts.get("fail"))
        fail_after = int(fail) if fail is not None else None
        tokens = _number(opts.get("tokens"))
        count = 0
        for token in _answer_tokens(prompt, int(tokens) if tokens is not None else None, calls_so_far):
            if fail_after is not None and count >= fail_after:
                raise ProviderResponseError("mock stream broke mid-answer", provider=self.name)
            if delay:
                await asyncio.sleep(delay)
            yield ModelText(text=token)
            count += 1
        yield ModelUsage(usage=Usage(input_tokens=_count_words(request.messages), output_tokens=count))
        yield ModelFinish(reason="stop")

    async def _tool_call(self, tool: str, args: str, index: int, delay: float) -> AsyncIterator[ModelEvent]:
        call_id = f"call_{index + 1}"
        yield ModelToolCallStart(id=call_id, name=tool)
        # Stream the arguments in two pieces, as real models do.
        half = len(args) // 2
        for piece in (args[:half], args[half:]):
            if delay:
                await asyncio.sleep(delay)
            if piece:
                yield ModelToolCallDelta(id=call_id, delta=piece)
        yield ModelToolCall(id=call_id, name=tool, arguments=args)
        yield ModelUsage(usage=Usage(input_tokens=10, output_tokens=5))
        yield ModelFinish(reason="tool-calls")


_DOCUMENT_ASK = re.compile(r"\b(essay|document|spreadsheet)\b", re.I)
_ASK_PREAMBLE = re.compile(
    r"^.*?\b(?:essay|document|spreadsheet)\b(?:\s+(?:about|on|for|of|with|listing|comparing))?\s*", re.I | re.S
)


def _document_request(prompt: str) -> dict[str, str] | None:
    """`createDocument`'s input for a prompt asking for a document ("Write an essay about rivers"), or None."""
    clean = _DIRECTIVE.sub("", prompt).strip()
    found = _DOCUMENT_ASK.search(clean)
    if found is None:
        return None
    kind = "sheet" if found.group(1).lower() == "spreadsheet" else "text"
    if kind == "text" and re.search(r"\b(code|program|script|function)\b", clean, re.I):
        kind = "code"
    topic = _ASK_PREAMBLE.sub("", clean, count=1).strip(" .?!") or clean
    return {"title": topic[:1].upper() + topic[1:80], "kind": kind}


def _sentences(text: str) -> list[str]:
    found = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", _DIRECTIVE.sub("", text)) if s.strip()]
    return [s for s in found if not s.startswith("#")] or ["Nothing to go on."]


def _instance(schema: dict[str, Any], sentences: list[str], name: str) -> Any:
    """A value matching `schema` (the JSON-schema subset structured outputs use): arrays get up to three
    items, a string named `original…` is one of `sentences`, other strings say what they are."""
    kind = schema.get("type")
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        return {key: _instance(sub, sentences, key) for key, sub in props.items()}
    if kind == "array":
        count = min(3, len(sentences), int(schema.get("maxItems", 3)))
        return [_instance(schema.get("items", {}), sentences[i:], name) for i in range(count)]
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if "enum" in schema:
        return schema["enum"][0]
    sentence = sentences[0]
    if name.startswith("original"):
        return sentence
    if name.startswith("suggested"):
        return f"{sentence.rstrip('.!?')}, made clearer."
    return f"mock {name or 'text'}: {sentence[:40]}"


def _number(value: str | None) -> float | None:
    """A directive's number; a malformed or negative one (`mock:delay=abc`) is ignored, not a crash."""
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0 <= number < 1e9 else None


def _last_user_text(messages: Sequence[Message]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.text
    return ""


def _tool_results_in_progress(messages: Sequence[Message]) -> int:
    """Tool results in the assistant message being built (the last message, when it is the assistant's)."""
    if not messages or messages[-1].role != "assistant":
        return 0
    return sum(1 for p in messages[-1].parts if p.tool_call_id and p.state and p.state.startswith("output-"))


def _count_words(messages: Sequence[Message]) -> int:
    return sum(len(m.text.split()) for m in messages)


def _answer_tokens(prompt: str, n: int | None, tool_results: int) -> Iterable[str]:
    if n is not None:
        return (f"t{i} " for i in range(n))
    clean = _DIRECTIVE.sub("", prompt).strip()
    head = f"I ran the tool {tool_results} time(s). " if tool_results else ""
    text = f"{head}This is the mock provider. You said: {json.dumps(clean[:200])}."
    return re.findall(r"\S+\s*", text)
