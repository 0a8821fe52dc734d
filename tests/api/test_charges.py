"""Tokens are charged for what was produced: a provider that reports no usage is charged an estimate from
the streamed text (ceil(characters / 4)), stored with the answer and flagged `estimated` in its final frame."""

from __future__ import annotations

from chatstream.models import Usage
from chatstream.providers.base import ModelFinish, ModelText, ModelUsage
from chatstream.providers.mock import MockProvider
from tests.api.test_lifecycle import send, serve, stored, ui
from tests.support.asgi import idle
from tests.support.settings import make_settings
from tests.support.sse import parse_frames

ANSWER = "An answer of exactly forty-two characters."  # 42 characters: 11 tokens


def silent() -> list[ModelText | ModelFinish]:
    """An answer whose provider reports no usage."""
    return [ModelText(text=ANSWER[:20]), ModelText(text=ANSWER[20:]), ModelFinish(reason="stop")]


async def test_an_answer_without_reported_usage_is_charged_an_estimate() -> None:
    mock = MockProvider(script=[silent()])
    async with serve(make_settings(title_generation=False), mock=mock) as client:
        response = await send(client, ui("t-est", "hi", mid="u1"))
        finish = next(f.data for f in parse_frames(response.text) if f.type == "finish")
        assert finish["messageMetadata"]["usage"] == {"outputTokens": 11, "estimated": True}
        await idle(client, "t-est")
        answer = (await stored(client, "t-est"))[1]
        assert answer["usage"] == {"outputTokens": 11}
        metrics = (await client.get("/metrics")).text
        assert 'chat_tokens_total{kind="output"} 11' in metrics
        assert 'chat_tokens_total{kind="output_estimated"} 11' in metrics


async def test_reported_usage_is_charged_as_reported() -> None:
    mock = MockProvider(
        script=[[ModelText(text=ANSWER), ModelUsage(usage=Usage(output_tokens=9)), ModelFinish(reason="stop")]]
    )
    async with serve(make_settings(title_generation=False), mock=mock) as client:
        response = await send(client, ui("t-rep", "hi", mid="u1"))
        finish = next(f.data for f in parse_frames(response.text) if f.type == "finish")
        assert finish["messageMetadata"]["usage"] == {"outputTokens": 9}


async def test_a_budget_holds_against_a_provider_that_reports_nothing() -> None:
    # 20 tokens a day, 11 charged per answer: the third send is refused, whatever the 5-token reservation says.
    mock = MockProvider(script=[silent() for _ in range(3)])
    settings = make_settings(title_generation=False, tokens_per_day={"premium": 20}, token_estimate=5)
    async with serve(settings, mock=mock) as client:
        statuses = []
        for i in range(3):
            statuses.append((await send(client, ui(f"t-bud{i}", "hi", mid="u1"))).status_code)
            await idle(client, f"t-bud{i}")
        assert statuses == [200, 200, 429]
