"""A new message while a run waits for approval supersedes it: its calls count as denied, a late decision
is a 409, and the model's next request has a result for every tool call."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from chatstream.providers.mock import MockProvider
from tests.tools.conftest import ALICE, Ledger, chat, frames_of, wait_idle
from tests.tools.test_approval import messages, suspend


async def test_new_message_supersedes_a_pending_approval(
    client: AsyncTestClient[Any], ledger: Ledger, mock: MockProvider
) -> None:
    s = await suspend(client)
    conversations = (await client.get("/api/chat/conversations", headers=ALICE)).json()["conversations"]
    assert [c.get("pendingRunId") for c in conversations if c["id"] == s["thread"]] == [s["run"]]

    r = await chat(client, "never mind, just say hi", threadId=s["thread"])
    assert r.status_code == 200
    assert frames_of(r)[-1].data["finishReason"] == "stop"
    await wait_idle(client, s["thread"])

    stored = await messages(client, s["thread"])
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]
    part = next(p for p in stored[1]["parts"] if p.get("toolCallId") == s["call"])
    assert part["state"] == "output-denied"
    assert part["approval"] == {"id": s["approval"], "approved": False, "reason": "superseded by a new message"}
    # The model saw the superseded call with a (denied) result, not a dangling call.
    sent = mock.requests[-1].messages
    assert [p.state for m in sent for p in m.parts if p.tool_call_id == s["call"]] == ["output-denied"]

    late = await client.post(
        "/api/chat/approve", json={"runId": s["run"], "threadId": s["thread"], "approved": True}, headers=ALICE
    )
    assert late.status_code == 409
    assert ledger.transfers == []
    conversations = (await client.get("/api/chat/conversations", headers=ALICE)).json()["conversations"]
    assert [c.get("pendingRunId") for c in conversations if c["id"] == s["thread"]] == [None]


async def test_approval_clears_the_pending_marker(client: AsyncTestClient[Any], ledger: Ledger) -> None:
    s = await suspend(client)
    r = await client.post(
        "/api/chat/approve", json={"runId": s["run"], "threadId": s["thread"], "approved": True}, headers=ALICE
    )
    assert r.status_code == 200
    await wait_idle(client, s["thread"])
    conversations = (await client.get("/api/chat/conversations", headers=ALICE)).json()["conversations"]
    assert [c.get("pendingRunId") for c in conversations if c["id"] == s["thread"]] == [None]
    assert len(ledger.transfers) == 1
