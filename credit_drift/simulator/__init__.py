"""Simulated traffic with drift: `drift` (the transforms), `scenario` (scenarios as data and the
seeded traffic they produce), `sender.simulate` (over HTTP), `replay.replay` and
`replay.bulk_backfill` (straight into the prediction log through the storage code)."""
