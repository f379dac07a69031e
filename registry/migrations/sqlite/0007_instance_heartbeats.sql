-- When each instance last said it is alive: a running server refreshes its rows every
-- quarter of `registry.instance_ttl_secs`, so `mercator models show` can tell a replica
-- that went away (its rows age past the TTL) from one that serves. Empty on rows written
-- before this column existed: read as their `at`.
ALTER TABLE load_reports ADD COLUMN seen_at TEXT NOT NULL DEFAULT '';
