-- A leaner store: about half the bytes per event (README "Storage").
--  * Every column ZSTD-compressed instead of LZ4; times along the sort key
--    Delta-encoded, counters T64; pages, entry/exit pages and referrers
--    dictionary-encoded (LowCardinality).
--  * visits.end_time dropped: no report reads it; a visit's length is `duration`.
--  * visit:screen joins the daily rollup (backfilled below for stored visits).
--  * Channels stored before the fix of direct and AI-assistant visits are corrected
--    (they read "Referral"), and the channel rollup rebuilt from them.
-- The column list of events and visits is collector/schema.py; the views' SELECTs
-- are generated from the dimension lists named here (collector/storage/rollups.py).
-- Changing a column's type rewrites that column of every part (minutes on a large
-- store, logged); codec-only changes apply to parts written or merged from now on.

DROP VIEW IF EXISTS visits_rollup_daily_mv{{on_cluster}};
DROP VIEW IF EXISTS visits_rollup_mv{{on_cluster}};
DROP VIEW IF EXISTS events_rollup_daily_mv{{on_cluster}};

ALTER TABLE events{{on_cluster}}
    MODIFY COLUMN site LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN timestamp DateTime64(3, 'UTC') CODEC(Delta(8), ZSTD(1)),
    MODIFY COLUMN name LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN visitor UInt64 CODEC(ZSTD(1)),
    MODIFY COLUMN visit UInt64 CODEC(ZSTD(1)),
    MODIFY COLUMN hostname LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN pathname LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN referrer LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN referrer_source LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN referrer_medium LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN utm_source LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN utm_medium LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN utm_campaign String CODEC(ZSTD(1)),
    MODIFY COLUMN utm_term String CODEC(ZSTD(1)),
    MODIFY COLUMN utm_content String CODEC(ZSTD(1)),
    MODIFY COLUMN browser LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN browser_version LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN os LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN os_version LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN device LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN screen LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN language LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN country LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN region LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN city LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN isp LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN prop_keys Array(String) CODEC(ZSTD(1)),
    MODIFY COLUMN prop_values Array(String) CODEC(ZSTD(1)),
    MODIFY COLUMN interactive UInt8 CODEC(ZSTD(1)),
    MODIFY COLUMN scroll_depth UInt8 CODEC(ZSTD(1)),
    MODIFY COLUMN engaged_ms UInt32 CODEC(T64, ZSTD(1));

ALTER TABLE visits{{on_cluster}}
    DROP COLUMN IF EXISTS end_time,
    MODIFY COLUMN site LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN visitor UInt64 CODEC(ZSTD(1)),
    MODIFY COLUMN visit UInt64 CODEC(ZSTD(1)),
    MODIFY COLUMN start_time DateTime64(3, 'UTC') CODEC(ZSTD(1)),
    MODIFY COLUMN duration UInt32 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN pageviews UInt32 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN events UInt32 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN interactive_events UInt32 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN is_bounce UInt8 CODEC(ZSTD(1)),
    MODIFY COLUMN engaged_ms UInt32 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN entry_page LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN exit_page LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN hostname LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN referrer LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN referrer_source LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN referrer_medium LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN channel LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN utm_source LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN utm_medium LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN utm_campaign String CODEC(ZSTD(1)),
    MODIFY COLUMN utm_term String CODEC(ZSTD(1)),
    MODIFY COLUMN utm_content String CODEC(ZSTD(1)),
    MODIFY COLUMN browser LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN browser_version LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN os LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN os_version LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN device LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN screen LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN language LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN country LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN region LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN city LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN isp LowCardinality(String) CODEC(ZSTD(1));

ALTER TABLE visits{{on_cluster}}
    UPDATE channel = multiIf(referrer_medium = 'ai-assistant', 'AI Assistants', 'Direct')
    WHERE channel = 'Referral' AND referrer_source = '' AND utm_source = ''
        AND utm_campaign = '' AND referrer_medium IN ('', 'direct')
        OR channel = 'Referral' AND referrer_medium = 'ai-assistant';

ALTER TABLE visits_rollup_daily{{on_cluster}} DELETE WHERE dimension = 'channel';

ALTER TABLE visits_rollup{{on_cluster}}
    MODIFY COLUMN value String CODEC(ZSTD(1)),
    MODIFY COLUMN visitors_s16 AggregateFunction(uniq, UInt64) CODEC(ZSTD(1)),
    MODIFY COLUMN visitors_s256 AggregateFunction(uniq, UInt64) CODEC(ZSTD(1));

ALTER TABLE visits_rollup_daily{{on_cluster}}
    MODIFY COLUMN value String CODEC(ZSTD(1)),
    MODIFY COLUMN visitors_s16 AggregateFunction(uniq, UInt64) CODEC(ZSTD(1)),
    MODIFY COLUMN visitors_s256 AggregateFunction(uniq, UInt64) CODEC(ZSTD(1));

ALTER TABLE events_rollup_daily{{on_cluster}}
    MODIFY COLUMN pathname LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN visitors_s16 AggregateFunction(uniq, UInt64) CODEC(ZSTD(1)),
    MODIFY COLUMN visitors_s256 AggregateFunction(uniq, UInt64) CODEC(ZSTD(1)),
    MODIFY COLUMN visits_s16 AggregateFunction(uniq, UInt64) CODEC(ZSTD(1)),
    MODIFY COLUMN visits_s256 AggregateFunction(uniq, UInt64) CODEC(ZSTD(1));

CREATE MATERIALIZED VIEW visits_rollup_mv{{on_cluster}} TO visits_rollup AS
{{visits_rollup_select}};

CREATE MATERIALIZED VIEW visits_rollup_daily_mv{{on_cluster}} TO visits_rollup_daily AS
{{visits_rollup_daily_select: entry_page, referrer, referrer_source, channel, utm_source,
  utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, os_version,
  device, screen, language, country, region, city, isp}};

CREATE MATERIALIZED VIEW events_rollup_daily_mv{{on_cluster}} TO events_rollup_daily AS
{{events_rollup_daily_select: name, hostname, pathname}};

-- Stored visits rolled up for the dimension this migration adds, and the corrected one:
-- backfill-dimensions: screen, channel
