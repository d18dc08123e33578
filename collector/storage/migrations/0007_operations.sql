-- What operators do to the data: per-site retention and the audit of removals
-- (collector/operations/retention.py, erase.py, audit.py; docs/operations.md).

-- A site's own retention, shorter than the settings' (COLLECTOR_RETENTION_MONTHS for
-- events and visits, COLLECTOR_ROLLUP_RETENTION_MONTHS for the rollups); 0 in a column
-- means the setting's. The settings are the TTL every site is held to; `collector
-- purge` (daily inside `collector serve`) enforces the shorter ones. Latest version wins.
CREATE TABLE IF NOT EXISTS site_retention{{on_cluster}}
(
    site          String,
    raw_months    UInt16,
    rollup_months UInt16,
    deleted       UInt8 DEFAULT 0,
    version       UInt64
)
ENGINE = {{engine: ReplacingMergeTree(version)}}
ORDER BY site;

-- One row per applied purge or erase: when, which command, its scope (JSON, as the
-- operator gave it), and the rows and bytes it removed from each table. No TTL and no
-- erase reaches it: the record of a removal outlives the data it describes.
CREATE TABLE IF NOT EXISTS audit{{on_cluster}}
(
    at            DateTime64(3, 'UTC'),
    command       LowCardinality(String),
    scope         String,
    tables        Array(String),
    rows          Array(UInt64),
    bytes         Array(UInt64)
)
ENGINE = {{engine: MergeTree}}
ORDER BY at;
