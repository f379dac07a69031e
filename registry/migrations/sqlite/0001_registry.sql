-- Models, immutable versions, their files, aliases with an append-only history, audit log.
CREATE TABLE models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    next_version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

CREATE TABLE model_versions (
    model_id INTEGER NOT NULL REFERENCES models(id),
    version INTEGER NOT NULL,
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
    model_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    PRIMARY KEY (model_id, version, path),
    FOREIGN KEY (model_id, version) REFERENCES model_versions(model_id, version)
);

CREATE TABLE aliases (
    model_id INTEGER NOT NULL REFERENCES models(id),
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (model_id, alias),
    FOREIGN KEY (model_id, version) REFERENCES model_versions(model_id, version)
);

CREATE TABLE alias_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id INTEGER NOT NULL REFERENCES models(id),
    alias TEXT NOT NULL,
    from_version INTEGER,
    to_version INTEGER NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    moved_at TEXT NOT NULL
);
CREATE INDEX alias_history_by_alias ON alias_history (model_id, alias, id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    model TEXT NOT NULL,
    version INTEGER,
    detail TEXT NOT NULL,
    at TEXT NOT NULL
);

-- Versions are immutable once registered: only the status may change.
CREATE TRIGGER model_versions_immutable BEFORE UPDATE ON model_versions
WHEN NEW.manifest IS NOT OLD.manifest OR NEW.version IS NOT OLD.version OR NEW.model_id IS NOT OLD.model_id
  OR NEW.tags IS NOT OLD.tags OR NEW.metrics IS NOT OLD.metrics OR NEW.artifact_prefix IS NOT OLD.artifact_prefix
BEGIN
    SELECT RAISE(ABORT, 'model versions are immutable');
END;
CREATE TRIGGER artifact_files_immutable BEFORE UPDATE ON artifact_files
BEGIN
    SELECT RAISE(ABORT, 'artifact files are immutable');
END;
CREATE TRIGGER alias_history_append_only BEFORE UPDATE ON alias_history
BEGIN
    SELECT RAISE(ABORT, 'alias history is append-only');
END;
CREATE TRIGGER alias_history_no_delete BEFORE DELETE ON alias_history
BEGIN
    SELECT RAISE(ABORT, 'alias history is append-only');
END;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;
