"""Schemathesis hooks for `test_schemathesis.py`: what the fuzzer must know that no JSON Schema can say.

Loaded by the schemathesis CLI through `SCHEMATHESIS_HOOKS`. They touch positive cases only (data the
document calls valid), and only where validity depends on the deployment or on a rule JSON Schema cannot
state; negative cases go out as generated:

- `provider` / `model` (and the chatbot's `selectedChatModel`, seed 003's `modelId`) must name what this
  server configures (`GET /api/models`), which a document shared by every deployment cannot enumerate;
- seed 003's `userId`, when given, must be the caller's own;
- an `Idempotency-Key` promises the same request when it is sent again: a positive case gets a fresh one;
- the AI SDK transport's *last* message is the new one (a user message with content, or an assistant
  message answering an approval): JSON Schema can constrain every array item, or the first ones, never the
  last.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis

PROVIDERS = ("mock",)
MODELS = ("mock-1", "mock-thinking", "mock/mock-1", "mock/mock-thinking")
USER = "alice"


def _positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    mode = getattr(getattr(meta, "generation", None), "mode", None)
    return bool(mode is not None and mode.is_positive)


def _pick(value: Any, allowed: tuple[str, ...]) -> str:
    return allowed[len(str(value)) % len(allowed)]


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if not _positive(case):
        return case
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    body = case.body
    if not isinstance(body, dict):
        return case
    for key, allowed in (("provider", PROVIDERS), ("model", MODELS), ("selectedChatModel", MODELS)):
        if isinstance(body.get(key), str) and body[key] not in allowed:
            body[key] = _pick(body[key], allowed)
    if isinstance(body.get("modelId"), str):
        body["modelId"] = _pick(body["modelId"], MODELS)
    if "content" in body and body.get("userId") is not None:
        body["userId"] = USER
    messages = body.get("messages")
    if "parts" not in body and "message" not in body and isinstance(messages, list) and messages:
        last = messages[-1]
        if isinstance(last, dict):
            last["role"] = "user"
            last["parts"] = [{"type": "text", "text": "hello"}]
            last["id"] = uuid.uuid4().hex  # the new message's id is checked, the history's are not
    return case
