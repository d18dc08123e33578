-- Raw events: one row per accepted event. No column can hold an IP address,
-- a raw user agent, a query string or an exact screen size.
CREATE TABLE IF NOT EXISTS events{{on_cluster}}
(
    site            LowCardinality(String),
    timestamp       DateTime64(3, 'UTC'),
    name            LowCardinality(String),
    visitor         UInt64,
    visit           UInt64,
    hostname        LowCardinality(String),
    pathname        String,
    referrer        String,
    referrer_source LowCardinality(String),
    referrer_medium LowCardinality(String),
    utm_source      LowCardinality(String),
    utm_medium      LowCardinality(String),
    utm_campaign    String,
    utm_term        String,
    utm_content     String,
    browser         LowCardinality(String),
    browser_version LowCardinality(String),
    os              LowCardinality(String),
    os_version      LowCardinality(String),
    device          LowCardinality(String),
    screen          LowCardinality(String),
    language        LowCardinality(String),
    country         LowCardinality(String),
    region          LowCardinality(String),
    city            LowCardinality(String),
    isp             LowCardinality(String),
    prop_keys       Array(String),
    prop_values     Array(String),
    interactive     UInt8,
    scroll_depth    UInt8,
    engaged_ms      UInt32
)
ENGINE = {{engine: MergeTree}}
PARTITION BY toYYYYMM(timestamp)
ORDER BY (site, toDate(timestamp), visitor, timestamp)
SAMPLE BY visitor
TTL toDateTime(timestamp) + INTERVAL 13 MONTH DELETE
-- A replayed batch (same insert_deduplication_token) is stored once.
SETTINGS non_replicated_deduplication_window = 10000;

-- Site allow-list and per-site settings. Latest version of a domain wins.
CREATE TABLE IF NOT EXISTS sites{{on_cluster}}
(
    domain          String,
    timezone        String DEFAULT 'UTC',
    exclude_ips     Array(String),
    exclude_paths   Array(String),
    deleted         UInt8 DEFAULT 0,
    version         UInt64
)
ENGINE = {{engine: ReplacingMergeTree(version)}}
ORDER BY domain;

-- One salt per UTC day, one partition per day, so that dropping a day's
-- partition removes its bytes from disk.
CREATE TABLE IF NOT EXISTS salts{{on_cluster}}
(
    day             Date,
    salt            String,
    created_ms      UInt64
)
ENGINE = {{engine: MergeTree}}
PARTITION BY toYYYYMMDD(day)
ORDER BY (day, created_ms, salt)
SETTINGS old_parts_lifetime = 1;
