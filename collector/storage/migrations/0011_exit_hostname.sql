-- The host of a visit's last page (Plausible's `visit:exit_page_hostname`), kept next to
-- its exit page: both change within a visit, so like `exit_page` it is read from the
-- collapsed table and is not in the rollups. Visits stored before keep '': their exit
-- host is not known.
ALTER TABLE visits{{on_cluster}}
    ADD COLUMN IF NOT EXISTS exit_hostname LowCardinality(String) CODEC(ZSTD(1));
