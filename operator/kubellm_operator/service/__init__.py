"""Services: one reconcile per kind (parse, build, compare, write through ports), plus adapters,
hand-offs and the defaults rollout."""
