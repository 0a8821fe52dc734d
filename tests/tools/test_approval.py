"""Human approval: suspension, then approve or deny through `POST /api/chat/approve` or an AI SDK request
whose tool part is `approval-responded`; decided once, by the conversation's owner only."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from chatstream.providers.mock import MockProvider
from tests.support.settings import services_of
from tests.support.sse import parse_frames, text_of
from tests.tools.conftest import (
    ALICE,
    BOB,
    FakeWeather,
    Ledger,
    chat,
    frames_of,
    make_settings,
    of_type,
    types,
    wait_idle,
)

TRANSFER = 'mock:tool=transfer mock:args={"to":"bob","amount":5} pay bob'


async def suspend(client: AsyncTestClient[Any], text: str = TRANSFER) -> dict[str, Any]:
    """Start a run that stops at an approval request; return what a client needs to decide it."""
    r = await chat(client, text)
    frames = frames_of(r)
    request = of_type(frames, "tool-approval-request")
    assert len(request) == 1, types(frames)
    finish = frames[-1].data
    assert finish["type"] == "finish" and finish["finishReason"] == "tool-calls"
    start = frames[0].data
    thread = r.headers["x-thread-id"]
    await wait_idle(client, thread)
    return {
        "thread": thread,
        "run": start["messageMetadata"]["runId"],
        "message": start["messageId"],
        "call": request[0]["toolCallId"],
        "approval": request[0]["approvalId"],
        "frames": frames,
    }


async def messages(client: AsyncTestClient[Any], thread: str) -> list[dict[str, Any]]:
    r = await client.get("/api/chat/messages", params={"conversationId": thread}, headers=ALICE)
    result: list[dict[str, Any]] = r.json()["messages"]
    return result


def ui_approval(s: dict[str, Any], approved: bool, reason: str | None = None) -> dict[str, Any]:
    """The body `useChat` sends after `addToolApprovalResponse` (protocol.md)."""
    approval: dict[str, Any] = {"id": s["approval"], "approved": approved}
    if reason:
        approval["reason"] = reason
    return {
        "id": s["thread"],
        "trigger": "submit-message",
        "messageId": s["message"],
        "messages": [
            {"id": "u1", "role": "user", "parts": [{"type": "text", "text": TRANSFER}]},
            {
                "id": s["message"],
                "role": "assistant",
                "parts": [
                    {"type": "step-start"},
                    {
                        "type": "tool-transfer",
                        "toolCallId": s["call"],
                        "state": "approval-responded",
                        "input": {"to": "bob", "amount": 5},
                        "approval": approval,
                    },
                ],
            },
        ],
    }


async def test_suspension_persists_the_run(client: AsyncTestClient[Any], ledger: Ledger) -> None:
    s = await suspend(client)
    kinds = types(s["frames"])
    assert kinds.index("tool-input-available") < kinds.index("tool-approval-request") < kinds.index("finish-step")
    assert "tool-output-available" not in kinds
    (status,) = of_type(s["frames"], "data-status")
    assert status["data"] == {
        "status": "awaiting-approval",
        "tool": "transfer",
        "toolCallId": s["call"],
        "approvalId": s["approval"],
        "runId": s["run"],
    }
    assert ledger.transfers == []
    services = services_of(client.app)
    suspended = await services.store.get_suspended_run(s["run"])
    assert suspended is not None
    assert suspended.message_id == s["message"] and suspended.step == 1 and suspended.user_id == "alice"
    assert [(p.tool_call_id, p.tool_name, p.input) for p in suspended.pending] == [
        (s["call"], "transfer", {"to": "bob", "amount": 5})
    ]
    (assistant,) = [m for m in await messages(client, s["thread"]) if m["role"] == "assistant"]
    part = next(p for p in assistant["parts"] if p["type"] == "tool-transfer")
    assert part["state"] == "approval-requested" and part["approval"] == {"id": s["approval"]}


@pytest.mark.parametrize("entry", ["approve", "ui"])
async def test_approve_runs_the_tool_and_continues_the_same_message(
    client: AsyncTestClient[Any], ledger: Ledger, mock: MockProvider, entry: str
) -> None:
    s = await suspend(client)
    if entry == "approve":
        r = await client.post(
            "/api/chat/approve",
            json={"runId": s["run"], "threadId": s["thread"], "toolCallId": s["call"], "approved": True},
            headers=ALICE,
        )
    else:
        r = await client.post("/api/chat", json=ui_approval(s, True), headers=ALICE)
    assert r.status_code == 200, r.text
    frames = frames_of(r)
    assert frames[0].data["type"] == "start" and frames[0].data["messageId"] == s["message"]
    outputs = of_type(frames, "tool-output-available")
    assert outputs == [
        {"type": "tool-output-available", "toolCallId": s["call"], "output": {"ok": True, "to": "bob", "amount": 5}}
    ]
    assert [(to, amount) for to, amount, _ in ledger.transfers] == [("bob", 5)]
    assert ledger.transfers[0][2].user_id == "alice"
    assert text_of(frames).startswith("I ran the tool 1 time(s).")
    assert frames[-1].data["finishReason"] == "stop"
    kinds = types(frames)
    # The decision finishes the step that made the call (no step around it), then the answer is a new step.
    assert kinds.count("start-step") == kinds.count("finish-step") == 1
    assert kinds.index("tool-input-available") < kinds.index("tool-output-available") < kinds.index("start-step")

    await wait_idle(client, s["thread"])
    stored = await messages(client, s["thread"])
    assert [m["role"] for m in stored] == ["user", "assistant"]  # one assistant message, grown in place
    assistant = stored[1]
    assert assistant["id"] == s["message"]
    part = next(p for p in assistant["parts"] if p["type"] == "tool-transfer")
    assert part["state"] == "output-available" and part["output"]["ok"] is True
    assert part["approval"]["approved"] is True
    assert "I ran the tool 1 time(s)." in "".join(p.get("text", "") for p in assistant["parts"])
    assert assistant["finishReason"] == "stop"
    # The model's continuation saw the tool's result; the step count carried over.
    last = mock.requests[-1].messages[-1]
    assert last.id == s["message"]
    assert [p.state for p in last.parts if p.tool_call_id == s["call"]] == ["output-available"]


@pytest.mark.parametrize("entry", ["approve", "ui"])
async def test_deny_reports_denied_and_the_model_continues(
    client: AsyncTestClient[Any], ledger: Ledger, mock: MockProvider, entry: str
) -> None:
    s = await suspend(client)
    if entry == "approve":
        r = await client.post(
            "/api/chat/approve",
            json={"runId": s["run"], "threadId": s["thread"], "toolCallId": s["call"], "approved": False},
            headers=ALICE,
        )
    else:
        r = await client.post("/api/chat", json=ui_approval(s, False, reason="not today"), headers=ALICE)
    assert r.status_code == 200, r.text
    frames = frames_of(r)
    assert of_type(frames, "tool-output-denied") == [{"type": "tool-output-denied", "toolCallId": s["call"]}]
    assert "tool-output-available" not in types(frames)
    assert ledger.transfers == []
    assert text_of(frames)  # the model answered
    assert frames[-1].data["finishReason"] == "stop"
    await wait_idle(client, s["thread"])
    assistant = (await messages(client, s["thread"]))[1]
    part = next(p for p in assistant["parts"] if p["type"] == "tool-transfer")
    assert part["state"] == "output-denied"
    assert part["approval"]["approved"] is False
    if entry == "ui":
        assert part["approval"]["reason"] == "not today"
    denied = [p for p in mock.requests[-1].messages[-1].parts if p.tool_call_id == s["call"]]
    assert denied[0].state == "output-denied"


@pytest.mark.parametrize("entry", ["approve", "ui"])
async def test_a_decision_is_applied_once(client: AsyncTestClient[Any], ledger: Ledger, entry: str) -> None:
    s = await suspend(client)
    body = {"runId": s["run"], "threadId": s["thread"], "approved": True}

    async def decide() -> Any:
        if entry == "approve":
            return await client.post("/api/chat/approve", json=body, headers=ALICE)
        return await client.post("/api/chat", json=ui_approval(s, True), headers=ALICE)

    first = await decide()
    assert first.status_code == 200
    frames_of(first)
    await wait_idle(client, s["thread"])
    second = await decide()
    assert second.status_code == 409, second.text
    assert len(ledger.transfers) == 1


async def test_only_the_owner_may_decide(client: AsyncTestClient[Any], ledger: Ledger) -> None:
    s = await suspend(client)
    body = {"runId": s["run"], "threadId": s["thread"], "approved": True}
    r = await client.post("/api/chat/approve", json=body, headers=BOB)
    assert r.status_code == 403, r.text
    r = await client.post("/api/chat", json=ui_approval(s, True), headers=BOB)
    assert r.status_code == 403, r.text
    assert ledger.transfers == []
    # Bob's attempts decided nothing: Alice still can.
    r = await client.post("/api/chat/approve", json=body, headers=ALICE)
    assert r.status_code == 200
    assert of_type(frames_of(r), "tool-output-available")


@pytest.mark.parametrize("body", [{}, {"runId": "run-x"}, {"threadId": "t"}, {"runId": "", "threadId": "t"}])
async def test_approve_needs_run_and_thread(client: AsyncTestClient[Any], body: dict[str, Any]) -> None:
    r = await client.post("/api/chat/approve", json=body, headers=ALICE)
    assert r.status_code == 400
    assert r.json() == {"error": "runId and threadId are required"}


async def test_unknown_run_is_404_and_does_not_block_a_later_decision(client: AsyncTestClient[Any]) -> None:
    s = await suspend(client)
    r = await client.post("/api/chat/approve", json={"runId": "run-nope", "threadId": s["thread"]}, headers=ALICE)
    assert r.status_code == 404
    r = await client.post("/api/chat/approve", json={"runId": s["run"], "threadId": "other"}, headers=ALICE)
    assert r.status_code == 404
    r = await client.post(
        "/api/chat/approve", json={"runId": s["run"], "threadId": s["thread"], "toolCallId": "nope"}, headers=ALICE
    )
    assert r.status_code == 404
    r = await client.post(
        "/api/chat/approve", json={"runId": s["run"], "threadId": s["thread"], "approved": True}, headers=ALICE
    )
    assert r.status_code == 200
    assert of_type(frames_of(r), "tool-output-available")


async def test_approval_tools_setting_requires_approval_for_builtins(
    mock: MockProvider, weather: FakeWeather, tools: list[Any]
) -> None:
    from chatstream import create_app

    app = create_app(make_settings(approval_tools=("getWeather",)), providers={"mock": mock}, tools=tools)
    async with AsyncTestClient(app) as client:
        s = await suspend(client, 'mock:tool=getWeather mock:args={"city":"Oslo"}')
        assert weather.asked == []
        r = await client.post(
            "/api/chat/approve", json={"runId": s["run"], "threadId": s["thread"], "approved": True}, headers=ALICE
        )
        assert of_type(frames_of(r), "tool-output-available")
    assert weather.asked == ["Oslo"]


async def test_parallel_calls_mixed_with_an_approval(
    client: AsyncTestClient[Any], mock: MockProvider, ledger: Ledger, weather: FakeWeather
) -> None:
    from chatstream.providers.base import ModelFinish, ModelText, ModelToolCall, ModelToolCallStart

    mock.enqueue(
        [
            ModelToolCallStart(id="w", name="getWeather"),
            ModelToolCall(id="w", name="getWeather", arguments='{"city":"Rome"}'),
            ModelToolCallStart(id="t1", name="transfer"),
            ModelToolCall(id="t1", name="transfer", arguments='{"to":"a","amount":1}'),
            ModelToolCallStart(id="t2", name="transfer"),
            ModelToolCall(id="t2", name="transfer", arguments='{"to":"b","amount":2}'),
            ModelFinish(reason="tool-calls"),
        ],
        [ModelText(text="done"), ModelFinish(reason="stop")],
    )
    r = await chat(client, "three things")
    frames = frames_of(r)
    # The tool without approval ran at once; both others wait.
    assert [o["toolCallId"] for o in of_type(frames, "tool-output-available")] == ["w"]
    assert sorted(a["toolCallId"] for a in of_type(frames, "tool-approval-request")) == ["t1", "t2"]
    thread = r.headers["x-thread-id"]
    run = frames[0].data["messageMetadata"]["runId"]
    await wait_idle(client, thread)
    r = await client.post(
        "/api/chat/approve",
        json={"runId": run, "threadId": thread, "toolCallId": "t2", "approved": True},
        headers=ALICE,
    )
    frames = frames_of(r)
    # A decision naming one call leaves the others denied: the run cannot stay half-suspended.
    assert of_type(frames, "tool-output-denied") == [{"type": "tool-output-denied", "toolCallId": "t1"}]
    assert [o["toolCallId"] for o in of_type(frames, "tool-output-available")] == ["t2"]
    assert [(to, amount) for to, amount, _ in ledger.transfers] == [("b", 2)]
    assert text_of(frames) == "done"


async def test_plain_dialect_clients_see_the_approval_as_a_status(client: AsyncTestClient[Any]) -> None:
    r = await client.post("/api/chat", json={"message": TRANSFER, "stream": True}, headers=ALICE)
    events = [f.data for f in parse_frames(r.text)]
    statuses = [e for e in events if isinstance(e, dict) and e.get("type") == "status"]
    assert statuses[-1]["status"] == "awaiting-approval" and statuses[-1]["tool"] == "transfer"
    assert statuses[-1]["runId"] == r.headers["x-run-id"]


async def test_a_decision_sent_before_the_suspension_is_stored_waits_for_it(
    mock: MockProvider, tools: list[Any], ledger: Ledger
) -> None:
    """A client may decide as soon as it sees `tool-approval-request`, before the run has stored its state
    and let go of the conversation: the decision waits for that instead of failing (404/409)."""
    import asyncio

    from chatstream import create_app
    from chatstream.models import ApprovalDecision, Principal, SuspendedRun
    from chatstream.store.memory import MemoryConversationStore

    outcomes: list[object] = []
    tasks: set[asyncio.Task[None]] = set()

    async def decide_now(run: SuspendedRun) -> None:
        services = services_of(app)
        try:
            handle = await services.runs.approve(
                Principal(user_id="alice"), run.run_id, run.conversation_id, [ApprovalDecision(approved=True)], ip="t"
            )
            outcomes.append(handle)
        except Exception as exc:
            outcomes.append(exc)

    class SlowStore(MemoryConversationStore):
        async def save_suspended_run(self, run: SuspendedRun) -> None:
            # The approval request is out, the state is not stored yet: decide right now, in the app's loop.
            task = asyncio.create_task(decide_now(run))
            tasks.add(task)
            await asyncio.sleep(0.3)
            await super().save_suspended_run(run)

    app = create_app(make_settings(), providers={"mock": mock}, tools=tools, store=SlowStore())
    async with AsyncTestClient(app) as client:
        r = await chat(client, TRANSFER)
        assert of_type(frames_of(r), "tool-approval-request")
        for _ in range(300):
            if outcomes and ledger.transfers:
                break
            await asyncio.sleep(0.01)
        await wait_idle(client, r.headers["x-thread-id"])
    assert len(outcomes) == 1 and not isinstance(outcomes[0], Exception), outcomes
    assert len(ledger.transfers) == 1
