-- Models, immutable versions, their files, aliases with an append-only history, audit log.
CREATE TABLE models (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    next_version BIGINT NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

CREATE TABLE model_versions (
    model_id BIGINT NOT NULL REFERENCES models(id),
    version BIGINT NOT NULL,
    status TEXT NOT NULL,
    manifest TEXT NOT NULL,
    description TEXT NOT NULL,
    tags TEXT NOT NULL,
    metrics TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    artifact_prefix TEXT NOT NULL,
    PRIMARY KEY (model_id, version)
);

CREATE TABLE artifact_files (
    model_id BIGINT NOT NULL,
    version BIGINT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    PRIMARY KEY (model_id, version, path),
    FOREIGN KEY (model_id, version) REFERENCES model_versions(model_id, version)
);

CREATE TABLE aliases (
    model_id BIGINT NOT NULL REFERENCES models(id),
    alias TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (model_id, alias),
    FOREIGN KEY (model_id, version) REFERENCES model_versions(model_id, version)
);

CREATE TABLE alias_history (
    id BIGSERIAL PRIMARY KEY,
    model_id BIGINT NOT NULL REFERENCES models(id),
    alias TEXT NOT NULL,
    from_version BIGINT,
    to_version BIGINT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    moved_at TEXT NOT NULL
);
CREATE INDEX alias_history_by_alias ON alias_history (model_id, alias, id);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    model TEXT NOT NULL,
    version BIGINT,
    detail TEXT NOT NULL,
    at TEXT NOT NULL
);

-- Versions are immutable once registered: only the status may change; history and audit
-- are append-only.
CREATE FUNCTION mercator_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only or immutable', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION mercator_version_immutable() RETURNS trigger AS $$
BEGIN
    IF NEW.manifest IS DISTINCT FROM OLD.manifest OR NEW.version IS DISTINCT FROM OLD.version
       OR NEW.model_id IS DISTINCT FROM OLD.model_id OR NEW.tags IS DISTINCT FROM OLD.tags
       OR NEW.metrics IS DISTINCT FROM OLD.metrics OR NEW.artifact_prefix IS DISTINCT FROM OLD.artifact_prefix THEN
        RAISE EXCEPTION 'model versions are immutable';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER model_versions_immutable BEFORE UPDATE ON model_versions
    FOR EACH ROW EXECUTE FUNCTION mercator_version_immutable();
CREATE TRIGGER artifact_files_immutable BEFORE UPDATE ON artifact_files
    FOR EACH ROW EXECUTE FUNCTION mercator_refuse_change();
CREATE TRIGGER alias_history_append_only BEFORE UPDATE OR DELETE ON alias_history
    FOR EACH ROW EXECUTE FUNCTION mercator_refuse_change();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION mercator_refuse_change();
