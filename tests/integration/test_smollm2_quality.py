"""A real small model through the runtime: its answers must make sense (quality check)."""

from __future__ import annotations

import openai
import pytest

from .conftest import RuntimeServer

pytestmark = pytest.mark.integration


def test_smollm2_knows_the_capital_of_france(smollm2_runtime: RuntimeServer) -> None:
    client = openai.OpenAI(base_url=f"{smollm2_runtime.base_url}/v1", api_key="x", max_retries=0)
    reply = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=40,
        temperature=0,
    )
    assert "Paris" in (reply.choices[0].message.content or "")
