"""Pure, deterministic builders: spec in, child manifest out (no clock, client or environment)."""
