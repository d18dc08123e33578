-- Leaner rollups. Exact uniq states of every visitor were most of the rollups'
-- cost (five times the size of the visits themselves, and three quarters of the
-- insert time), yet reports only used them on ranges small enough to count
-- from the raw tables in milliseconds. Now the rollups keep exact sums and the
-- visitor samples (1/16: visitor < 2^60, 1/256: visitor < 2^56, the same rows
-- as `SAMPLE 1/16` on the raw tables); exact visitors come from the raw tables.
--
-- Levels:
--   visits_rollup        per UTC hour, the site total only (dimension '')
--   visits_rollup_daily  per UTC day, the total and 19 visit dimensions
--   events_rollup_daily  per UTC day, (name, hostname, path)
-- The daily tables are filled straight from the raw inserts, not from an hourly
-- level. Reports read whole UTC days from them and compute the hours at either
-- edge of a range (site timezones) from the raw rows with the same SELECT.

DROP VIEW IF EXISTS visits_rollup_daily_mv{{on_cluster}};
DROP VIEW IF EXISTS events_rollup_daily_mv{{on_cluster}};
DROP VIEW IF EXISTS visits_rollup_mv{{on_cluster}};
DROP VIEW IF EXISTS events_rollup_mv{{on_cluster}};
DROP TABLE IF EXISTS visits_rollup_daily{{on_cluster}};
DROP TABLE IF EXISTS events_rollup_daily{{on_cluster}};
DROP TABLE IF EXISTS visits_rollup{{on_cluster}};
DROP TABLE IF EXISTS events_rollup{{on_cluster}};

CREATE TABLE visits_rollup{{on_cluster}}
(
    site          LowCardinality(String),
    dimension     LowCardinality(String),
    hour          DateTime('UTC'),
    value         String,
    visitors_s16  AggregateFunction(uniq, UInt64),
    visitors_s256 AggregateFunction(uniq, UInt64),
    visits        SimpleAggregateFunction(sum, Int64),
    pageviews     SimpleAggregateFunction(sum, Int64),
    events        SimpleAggregateFunction(sum, Int64),
    bounces       SimpleAggregateFunction(sum, Int64),
    duration      SimpleAggregateFunction(sum, Int64)
)
ENGINE = {{engine: AggregatingMergeTree}}
PARTITION BY toYYYYMM(hour)
ORDER BY (site, dimension, hour, value)
TTL hour + INTERVAL 25 MONTH DELETE
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE visits_rollup_daily{{on_cluster}} AS visits_rollup
ENGINE = {{engine: AggregatingMergeTree}}
PARTITION BY toYYYYMM(hour)
ORDER BY (site, dimension, hour, value)
TTL hour + INTERVAL 25 MONTH DELETE
SETTINGS non_replicated_deduplication_window = 10000;

-- Sums over sign: a visit's -1/+1 update pairs cancel exactly. A cancelled row
-- has the same visitor as its replacement, so the samples are unaffected.
CREATE MATERIALIZED VIEW visits_rollup_mv{{on_cluster}} TO visits_rollup AS
SELECT
    site,
    '' AS dimension,
    toStartOfHour(start_time) AS hour,
    '' AS value,
    uniqStateIf(visitor, visitor < 1152921504606846976) AS visitors_s16,
    uniqStateIf(visitor, visitor < 72057594037927936) AS visitors_s256,
    sum(toInt64(sign)) AS visits,
    sum(sign * toInt64(pageviews)) AS pageviews,
    sum(sign * toInt64(events)) AS events,
    sum(sign * toInt64(is_bounce)) AS bounces,
    sum(sign * toInt64(duration)) AS duration
FROM visits
GROUP BY site, hour;

-- exit_page is left out on purpose: it changes within a visit, so it is read
-- from the collapsed raw table.
CREATE MATERIALIZED VIEW visits_rollup_daily_mv{{on_cluster}} TO visits_rollup_daily AS
SELECT
    site,
    pair.1 AS dimension,
    toStartOfDay(start_time) AS hour,
    pair.2 AS value,
    uniqStateIf(visitor, visitor < 1152921504606846976) AS visitors_s16,
    uniqStateIf(visitor, visitor < 72057594037927936) AS visitors_s256,
    sum(toInt64(sign)) AS visits,
    sum(sign * toInt64(pageviews)) AS pageviews,
    sum(sign * toInt64(events)) AS events,
    sum(sign * toInt64(is_bounce)) AS bounces,
    sum(sign * toInt64(duration)) AS duration
FROM visits
ARRAY JOIN [
    ('', ''),
    ('entry_page', entry_page),
    ('referrer_source', toString(referrer_source)),
    ('referrer', referrer),
    ('channel', toString(channel)),
    ('utm_source', toString(utm_source)),
    ('utm_medium', toString(utm_medium)),
    ('utm_campaign', utm_campaign),
    ('utm_term', utm_term),
    ('utm_content', utm_content),
    ('browser', toString(browser)),
    ('browser_version', toString(browser_version)),
    ('os', toString(os)),
    ('os_version', toString(os_version)),
    ('device', toString(device)),
    ('country', toString(country)),
    ('region', toString(region)),
    ('city', toString(city)),
    ('language', toString(language)),
    ('isp', toString(isp))
] AS pair
GROUP BY site, dimension, hour, value;

-- Pages, custom events and goals. Engagement events only refine visit
-- durations; they are not counted here. Visits are sampled by visitor too.
CREATE TABLE events_rollup_daily{{on_cluster}}
(
    site          LowCardinality(String),
    hour          DateTime('UTC'),
    name          LowCardinality(String),
    hostname      LowCardinality(String),
    pathname      String,
    visitors_s16  AggregateFunction(uniq, UInt64),
    visitors_s256 AggregateFunction(uniq, UInt64),
    visits_s16    AggregateFunction(uniq, UInt64),
    visits_s256   AggregateFunction(uniq, UInt64),
    events        SimpleAggregateFunction(sum, UInt64)
)
ENGINE = {{engine: AggregatingMergeTree}}
PARTITION BY toYYYYMM(hour)
ORDER BY (site, hour, name, hostname, pathname)
TTL hour + INTERVAL 25 MONTH DELETE
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW events_rollup_daily_mv{{on_cluster}} TO events_rollup_daily AS
SELECT
    site,
    toStartOfDay(timestamp) AS hour,
    name,
    hostname,
    pathname,
    uniqStateIf(visitor, visitor < 1152921504606846976) AS visitors_s16,
    uniqStateIf(visitor, visitor < 72057594037927936) AS visitors_s256,
    uniqStateIf(visit, visitor < 1152921504606846976) AS visits_s16,
    uniqStateIf(visit, visitor < 72057594037927936) AS visits_s256,
    count() AS events
FROM events
WHERE name != 'engagement'
GROUP BY site, hour, name, hostname, pathname;

-- Traffic stored before this migration, rolled up once by the views' own SELECTs:
-- backfill: visits_rollup_mv visits_rollup
-- backfill: visits_rollup_daily_mv visits_rollup_daily
-- backfill: events_rollup_daily_mv events_rollup_daily
