-- What the dashboard needs beyond the reports: the requests ingest deliberately did not
-- record, counted (collector/drops.py), and the origins a share link may be embedded on.

-- Requests not recorded, per configured site, UTC hour and reason (bot, spam, opt-out,
-- excluded, prefetch): a count and nothing else about the request. Rows of the same
-- (site, hour, reason) are summed by the engine; readers still sum(count). Kept as long
-- as the rollups (COLLECTOR_ROLLUP_RETENTION_MONTHS, applied at startup like theirs).
CREATE TABLE IF NOT EXISTS drops{{on_cluster}}
(
    site          LowCardinality(String),
    hour          DateTime('UTC') CODEC(Delta, ZSTD(1)),
    reason        LowCardinality(String),
    count         UInt64 CODEC(T64, ZSTD(1))
)
ENGINE = {{engine: SummingMergeTree(count)}}
PARTITION BY toYYYYMM(hour)
ORDER BY (site, hour, reason)
TTL hour + INTERVAL 25 MONTH DELETE
SETTINGS non_replicated_deduplication_window = 10000;

-- Origins (scheme://host[:port]) that may frame a share link's dashboard
-- (Content-Security-Policy frame-ancestors); empty: none may.
ALTER TABLE api_keys{{on_cluster}} ADD COLUMN IF NOT EXISTS embed_origins Array(String) DEFAULT [];
