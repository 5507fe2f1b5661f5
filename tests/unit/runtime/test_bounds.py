"""Nothing grows per request: what the runtime and the fake engine keep is bounded."""

from __future__ import annotations

from kubellm_runtime.engine.base import GenerationRequest, Sampling
from kubellm_runtime.engine.fake import RECENT, FakeEngine


async def test_the_fake_engine_remembers_a_bounded_number_of_requests() -> None:
    engine = FakeEngine()
    for i in range(3 * RECENT):
        request = GenerationRequest(f"r{i}", "hi", Sampling(max_tokens=1))
        _ = [chunk async for chunk in engine.generate(request)]
        await engine.abort(request.request_id)
    assert len(engine.started) == RECENT
    assert engine.started[-1].request_id == f"r{3 * RECENT - 1}"
    assert len(engine.aborted) == RECENT
    assert f"r{3 * RECENT - 1}" in engine.aborted
