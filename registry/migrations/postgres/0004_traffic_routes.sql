-- How a model's default traffic (requests that name no version) is shared out over its
-- aliases: live routes split it by percent (summing to 100), shadow routes get a copy of
-- that share of it whose answers are discarded. No rows: the champion takes it all.
-- Replaced as a whole, in one audited transaction.
CREATE TABLE traffic_routes (
    model_id BIGINT NOT NULL REFERENCES models(id),
    alias TEXT NOT NULL,
    percent BIGINT NOT NULL,
    shadow BIGINT NOT NULL,
    PRIMARY KEY (model_id, alias)
);
