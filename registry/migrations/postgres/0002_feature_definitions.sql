-- Feature store definitions (entities and feature views, as the TOML applied), one row
-- per apply: the newest revision is current; older ones are kept, never changed.
CREATE TABLE feature_definitions (
    revision BIGINT PRIMARY KEY,
    toml TEXT NOT NULL,
    applied_by TEXT NOT NULL,
    applied_at TEXT NOT NULL
);
CREATE TRIGGER feature_definitions_append_only BEFORE UPDATE OR DELETE ON feature_definitions
    FOR EACH ROW EXECUTE FUNCTION mercator_refuse_change();
