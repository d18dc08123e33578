-- API keys and public share tokens: only the SHA-256 of the secret is stored;
-- the token itself is shown once, at creation. Latest version of a key wins.
CREATE TABLE IF NOT EXISTS api_keys{{on_cluster}}
(
    key_id        String,
    site          String,
    kind          LowCardinality(String),
    secret_sha256 String,
    label         String,
    created_ms    UInt64,
    revoked       UInt8 DEFAULT 0,
    version       UInt64
)
ENGINE = {{engine: ReplacingMergeTree(version)}}
ORDER BY key_id;

-- A site's goals: a page glob (pageviews whose path matches) or a custom event name.
CREATE TABLE IF NOT EXISTS goals{{on_cluster}}
(
    site          String,
    name          String,
    kind          LowCardinality(String),
    pattern       String,
    deleted       UInt8 DEFAULT 0,
    version       UInt64
)
ENGINE = {{engine: ReplacingMergeTree(version)}}
ORDER BY (site, name);

-- Per-site report privacy: breakdown rows with fewer unique visitors than k
-- are folded into "(other)". k applies to key holders, public_k to share tokens.
CREATE TABLE IF NOT EXISTS report_settings{{on_cluster}}
(
    site          String,
    k             UInt32 DEFAULT 1,
    public_k      UInt32 DEFAULT 5,
    version       UInt64
)
ENGINE = {{engine: ReplacingMergeTree(version)}}
ORDER BY site;
