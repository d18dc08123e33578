-- Visits maintained at ingest (collector.visits.VisitTracker). An update of a
-- visit writes a sign = -1 row cancelling its previous state and a sign = +1
-- row with the new state; every visit metric is a sum over sign, so results
-- are right whether or not ClickHouse has collapsed the pairs yet.
-- A visit's attributes (source, utm, browser, geo...) are those of its first event.
CREATE TABLE IF NOT EXISTS visits{{on_cluster}}
(
    site               LowCardinality(String),
    visitor            UInt64,
    visit              UInt64,
    start_time         DateTime64(3, 'UTC'),
    end_time           DateTime64(3, 'UTC'),
    duration           UInt32,
    pageviews          UInt32,
    events             UInt32,
    interactive_events UInt32,
    is_bounce          UInt8,
    engaged_ms         UInt32,
    entry_page         String,
    exit_page          String,
    hostname           LowCardinality(String),
    referrer           String,
    referrer_source    LowCardinality(String),
    referrer_medium    LowCardinality(String),
    channel            LowCardinality(String),
    utm_source         LowCardinality(String),
    utm_medium         LowCardinality(String),
    utm_campaign       String,
    utm_term           String,
    utm_content        String,
    browser            LowCardinality(String),
    browser_version    LowCardinality(String),
    os                 LowCardinality(String),
    os_version         LowCardinality(String),
    device             LowCardinality(String),
    screen             LowCardinality(String),
    language           LowCardinality(String),
    country            LowCardinality(String),
    region             LowCardinality(String),
    city               LowCardinality(String),
    isp                LowCardinality(String),
    sign               Int8,
    version            UInt32
)
ENGINE = {{engine: VersionedCollapsingMergeTree(sign, version)}}
PARTITION BY toYYYYMM(start_time)
ORDER BY (site, toDate(start_time), visitor, visit)
SAMPLE BY visitor
TTL toDateTime(start_time) + INTERVAL 13 MONTH DELETE
-- A replayed batch (same insert_deduplication_token) is stored once.
SETTINGS non_replicated_deduplication_window = 10000;
