-- Hourly rollups filled by materialized views, so the dashboard's unfiltered
-- reports read thousands of pre-aggregated rows instead of millions of events.
-- Hours are UTC; reports bucket them in the site timezone (whole-hour offsets).

-- Visits, in long form: one row per (hour, dimension, value). dimension '' is
-- the site total. Additive metrics are sums over sign, so a visit's -1/+1
-- update pairs cancel exactly; visitors are uniq states. exit_page is left out
-- on purpose: it changes within a visit, and a uniq state cannot forget the
-- old exit page, so exit-page visitors come from the raw table.
-- visitors_s16 / visitors_s256 hold only the visitors of a 1/16 and 1/256
-- sample (visitor < 2^60 / 2^56: the same rows as `SAMPLE 1/16` on the raw
-- tables, which are SAMPLE BY visitor). Merging uniq states costs as much as
-- counting the visitors themselves, so large ranges read a sample of them;
-- the sums stay exact.
CREATE TABLE IF NOT EXISTS visits_rollup{{on_cluster}}
(
    site        LowCardinality(String),
    dimension   LowCardinality(String),
    hour        DateTime('UTC'),
    value       String,
    visitors    AggregateFunction(uniq, UInt64),
    visitors_s16  AggregateFunction(uniq, UInt64),
    visitors_s256 AggregateFunction(uniq, UInt64),
    visits      SimpleAggregateFunction(sum, Int64),
    pageviews   SimpleAggregateFunction(sum, Int64),
    events      SimpleAggregateFunction(sum, Int64),
    bounces     SimpleAggregateFunction(sum, Int64),
    duration    SimpleAggregateFunction(sum, Int64)
)
ENGINE = {{engine: AggregatingMergeTree}}
PARTITION BY toYYYYMM(hour)
ORDER BY (site, dimension, hour, value)
TTL hour + INTERVAL 25 MONTH DELETE
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS visits_rollup_mv{{on_cluster}} TO visits_rollup AS
SELECT
    site,
    pair.1 AS dimension,
    toStartOfHour(start_time) AS hour,
    pair.2 AS value,
    uniqState(visitor) AS visitors,
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

-- Events per (hour, name, hostname, page): pages, custom events and goals.
-- Engagement events only refine visit durations; they are not counted here.
CREATE TABLE IF NOT EXISTS events_rollup{{on_cluster}}
(
    site        LowCardinality(String),
    hour        DateTime('UTC'),
    name        LowCardinality(String),
    hostname    LowCardinality(String),
    pathname    String,
    visitors    AggregateFunction(uniq, UInt64),
    visitors_s16  AggregateFunction(uniq, UInt64),
    visitors_s256 AggregateFunction(uniq, UInt64),
    visits      AggregateFunction(uniq, UInt64),
    events      SimpleAggregateFunction(sum, UInt64)
)
ENGINE = {{engine: AggregatingMergeTree}}
PARTITION BY toYYYYMM(hour)
ORDER BY (site, hour, name, hostname, pathname)
TTL hour + INTERVAL 25 MONTH DELETE
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_rollup_mv{{on_cluster}} TO events_rollup AS
SELECT
    site,
    toStartOfHour(timestamp) AS hour,
    name,
    hostname,
    pathname,
    uniqState(visitor) AS visitors,
    uniqStateIf(visitor, visitor < 1152921504606846976) AS visitors_s16,
    uniqStateIf(visitor, visitor < 72057594037927936) AS visitors_s256,
    uniqState(visit) AS visits,
    count() AS events
FROM events
WHERE name != 'engagement'
GROUP BY site, hour, name, hostname, pathname;

-- Daily copies (UTC days) of both rollups, fed from the hourly ones. Reports
-- read whole UTC days from these and only the edge hours from the hourly
-- tables: a 30-day breakdown merges 30 rows per value instead of 720. The
-- `hour` column holds the day's midnight, so both levels share one shape.
CREATE TABLE IF NOT EXISTS visits_rollup_daily{{on_cluster}} AS visits_rollup
ENGINE = {{engine: AggregatingMergeTree}}
PARTITION BY toYYYYMM(hour)
ORDER BY (site, dimension, hour, value)
TTL hour + INTERVAL 25 MONTH DELETE
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS visits_rollup_daily_mv{{on_cluster}} TO visits_rollup_daily AS
SELECT site, dimension, day_start AS hour, value, visitors_day AS visitors,
       visitors_s16_day AS visitors_s16, visitors_s256_day AS visitors_s256,
       visits_day AS visits, pageviews_day AS pageviews, events_day AS events,
       bounces_day AS bounces, duration_day AS duration
FROM
(
    SELECT site, dimension, toStartOfDay(hour) AS day_start, value,
           uniqMergeState(visitors) AS visitors_day,
           uniqMergeState(visitors_s16) AS visitors_s16_day,
           uniqMergeState(visitors_s256) AS visitors_s256_day,
           sum(visits) AS visits_day, sum(pageviews) AS pageviews_day,
           sum(events) AS events_day, sum(bounces) AS bounces_day,
           sum(duration) AS duration_day
    FROM visits_rollup
    GROUP BY site, dimension, day_start, value
);

CREATE TABLE IF NOT EXISTS events_rollup_daily{{on_cluster}} AS events_rollup
ENGINE = {{engine: AggregatingMergeTree}}
PARTITION BY toYYYYMM(hour)
ORDER BY (site, hour, name, hostname, pathname)
TTL hour + INTERVAL 25 MONTH DELETE
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_rollup_daily_mv{{on_cluster}} TO events_rollup_daily AS
SELECT site, day_start AS hour, name, hostname, pathname, visitors_day AS visitors,
       visitors_s16_day AS visitors_s16, visitors_s256_day AS visitors_s256,
       visits_day AS visits, events_day AS events
FROM
(
    SELECT site, toStartOfDay(hour) AS day_start, name, hostname, pathname,
           uniqMergeState(visitors) AS visitors_day,
           uniqMergeState(visitors_s16) AS visitors_s16_day,
           uniqMergeState(visitors_s256) AS visitors_s256_day,
           uniqMergeState(visits) AS visits_day, sum(events) AS events_day
    FROM events_rollup
    GROUP BY site, day_start, name, hostname, pathname
);
