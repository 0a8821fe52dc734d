"""Per-token CPU cost of each provider adapter at N concurrent streams, against the fake upstream.

    .venv/bin/python -m bench.provider_cost [--streams 200] [--tokens 500] [--rounds 3]

The fake upstream (`tests/fakes/upstream.py`) runs in its own process; this process is the load client.
For each mode it opens `--streams` concurrent streams of `--tokens` tokens and measures this process's CPU
time (`time.process_time`) per token received. Modes:

* `direct`: the same upstream bytes read with the shared httpx2 client and nothing else (the floor);
* `openai-sdk` / `anthropic-sdk`: the SDK's own streaming (`create(stream=True)`), one SDK object per chunk;
* `openai-raw` / `anthropic-raw`: our adapters, which read through the SDK's streaming-response API and
  decode with msgspec, producing `ModelEvent`s.

Figures are reported as ratios to `direct` measured in the same run (these machines are noisy), with
absolute µs/token alongside. Rounds interleave the modes; the median round is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import httpx2
import openai

from chatstream.models import Message, MessagePart
from chatstream.providers.anthropic import AnthropicProvider
from chatstream.providers.base import ModelText, ProviderRequest
from chatstream.providers.catalog import CATALOG
from chatstream.providers.openai_compat import OpenAICompatProvider
from tests.fakes.upstream import FakeUpstream

Mode = Callable[[int], Awaitable[int]]  # stream index -> text tokens received


def _request(model: str) -> ProviderRequest:
    message = Message(id="m", conversation_id="c", role="user", parts=(MessagePart(type="text", text="go"),))
    return ProviderRequest(model=model, messages=(message,))


def build_modes(fake: FakeUpstream, client: httpx2.AsyncClient, tokens: int) -> dict[str, Mode]:
    model = f"tokens-{tokens}"
    oa_url, an_url = f"{fake.url}/bench/v1", f"{fake.url}/bench"
    timeout = httpx2.Timeout(60.0, connect=10.0)
    oa_sdk = openai.AsyncOpenAI(api_key="k", base_url=oa_url, http_client=client, max_retries=0)
    an_sdk = anthropic.AsyncAnthropic(api_key="k", base_url=an_url, http_client=client, max_retries=0)
    oa_raw = OpenAICompatProvider(CATALOG["openai"], api_key="k", base_url=oa_url, http_client=client, timeout=timeout)
    an_raw = AnthropicProvider(CATALOG["claude"], api_key="k", base_url=an_url, http_client=client, timeout=timeout)
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "go"}], "stream": True}

    async def direct(_: int) -> int:
        async with client.stream("POST", f"{oa_url}/chat/completions", json=body) as response:
            async for _chunk in response.aiter_bytes():
                pass
        return tokens

    async def openai_sdk(_: int) -> int:
        n = 0
        stream = await oa_sdk.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "go"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                n += 1
        return n

    async def anthropic_sdk(_: int) -> int:
        n = 0
        stream = await an_sdk.messages.create(
            model=model, max_tokens=4096, messages=[{"role": "user", "content": "go"}], stream=True
        )
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                n += 1
        return n

    async def adapter(provider: OpenAICompatProvider | AnthropicProvider) -> int:
        n = 0
        async for event in provider.stream(_request(model)):
            if isinstance(event, ModelText):
                n += 1
        return n

    return {
        "direct": direct,
        "openai-sdk": openai_sdk,
        "openai-raw": lambda _: adapter(oa_raw),
        "anthropic-sdk": anthropic_sdk,
        "anthropic-raw": lambda _: adapter(an_raw),
    }


async def run_mode(mode: Mode, streams: int) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, tokens) for `streams` concurrent streams."""
    cpu, wall = time.process_time(), time.perf_counter()
    counts = await asyncio.gather(*(mode(i) for i in range(streams)))
    return time.process_time() - cpu, time.perf_counter() - wall, sum(counts)


async def main(streams: int, tokens: int, rounds: int) -> None:
    with FakeUpstream.start() as fake:
        limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=streams)
        async with httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(60.0)) as client:
            modes = build_modes(fake, client, tokens)
            for mode in modes.values():  # warm up connections, imports and caches
                await run_mode(mode, min(streams, 20))
            results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in modes}
            for _ in range(rounds):
                for name, mode in modes.items():
                    results[name].append(await run_mode(mode, streams))
    per_token = {name: statistics.median(c / max(t, 1) * 1e6 for c, _, t in runs) for name, runs in results.items()}
    wall = {name: statistics.median(w for _, w, _ in runs) for name, runs in results.items()}
    base = per_token["direct"]
    print(f"{streams} concurrent streams x {tokens} tokens, median of {rounds} rounds")
    print(f"{'mode':<15}{'CPU µs/token':>14}{'x direct':>10}{'wall s':>9}{'tokens/s':>11}")
    for name in modes:
        total = streams * tokens
        print(
            f"{name:<15}{per_token[name]:>14.2f}{per_token[name] / base:>10.2f}{wall[name]:>9.2f}"
            f"{total / wall[name]:>11.0f}"
        )
    for family in ("openai", "anthropic"):
        sdk, raw = per_token[f"{family}-sdk"], per_token[f"{family}-raw"]
        print(
            f"{family}: SDK objects cost {sdk / raw:.2f}x our raw decode per token "
            f"(adapter overhead over direct: {(raw - base):.2f} µs/token)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.streams, args.tokens, args.rounds))
