-- API keys: a principal's name, scopes and lifetime. Only the SHA-256 of the key is
-- stored; the key itself is shown once, when it is created. Revocation marks the row
-- (every replica reading this table sees it); rows are never deleted, so the audit log's
-- names stay resolvable.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);
