"""Developer harness: builds and runs the local test cluster (no Docker, no GPU)."""
