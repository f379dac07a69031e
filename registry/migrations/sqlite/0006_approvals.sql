-- Approvals of model versions: the four-eyes rule. A version may be moved onto a
-- protected alias (when approval is required) only once a principal other than the one
-- who registered it has approved it. Rows are never deleted: they are the record.
CREATE TABLE version_approvals (
    model_id INTEGER NOT NULL REFERENCES models(id),
    version BIGINT NOT NULL,
    approved_by TEXT NOT NULL,
    approved_at TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (model_id, version, approved_by)
);
