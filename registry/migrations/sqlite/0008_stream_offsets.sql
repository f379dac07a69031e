-- Where each stream source has read to, per partition of its topic: the offset of the
-- next message to consume, advanced only after the rows before it were written durably
-- (at least once: a restart resumes here and re-delivers at most what was written
-- since). The replica that committed it and when, for `mercator`'s operators.
CREATE TABLE stream_offsets (
    source       TEXT NOT NULL,
    topic        TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    next_offset  INTEGER NOT NULL,
    instance     TEXT NOT NULL,
    at           TEXT NOT NULL,
    PRIMARY KEY (source, topic, partition_id)
);
