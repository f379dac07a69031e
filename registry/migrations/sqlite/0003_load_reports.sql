-- What each serving instance last saw when it loaded a version: loaded, or failed and
-- why (checksum mismatch, bad manifest, build or warm-up error), so that `mercator models
-- show` can tell an ML engineer that a promoted version is not being served. One row per
-- (model, version, instance), replaced on every attempt.
CREATE TABLE load_reports (
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    instance TEXT NOT NULL,
    loaded INTEGER NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (model, version, instance)
);
