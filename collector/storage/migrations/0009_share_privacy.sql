-- Differential privacy for public share links (collector/reports/release.py, budget.py;
-- docs/privacy.md, "Public share links").

-- A site's privacy budget for share tokens, next to its k-thresholds: each answer a share
-- token gets spends share_epsilon, and one token spends at most share_epsilon_day per UTC
-- day. The defaults are collector.reports.thresholds' DEFAULT_EPSILON(_DAY).
ALTER TABLE report_settings{{on_cluster}} ADD COLUMN IF NOT EXISTS share_epsilon Float64 DEFAULT 1;
ALTER TABLE report_settings{{on_cluster}} ADD COLUMN IF NOT EXISTS share_epsilon_day Float64 DEFAULT 30;

-- What each share token spent: one row per distinct answer (release) and UTC day. The
-- release is a digest of the token, the normalised query and the exact data it answered,
-- so asking again for the same answer finds its row and spends nothing. Every collector
-- of an installation writes here and reads the day's sum before it answers.
CREATE TABLE IF NOT EXISTS privacy_spends{{on_cluster}}
(
    key_id        String,
    day           Date,
    release       String,
    epsilon       Float64,
    at_ms         UInt64
)
ENGINE = {{engine: ReplacingMergeTree(at_ms)}}
PARTITION BY toYYYYMM(day)
ORDER BY (key_id, day, release)
TTL day + INTERVAL 25 MONTH DELETE;

-- The secret that keys the noise of share-link answers: 256 random bits, written by the
-- first collector that needs one (earliest created_ms, then lowest bytes, wins), shared by
-- all of them so that the same question gets the same noise wherever it is asked.
CREATE TABLE IF NOT EXISTS privacy_keys{{on_cluster}}
(
    created_ms    UInt64,
    secret        String
)
ENGINE = {{engine: MergeTree}}
ORDER BY created_ms;
