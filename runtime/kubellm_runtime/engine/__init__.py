"""Engines behind one protocol: vLLM (GPU and CPU builds) and a zero-cost fake for tests."""
