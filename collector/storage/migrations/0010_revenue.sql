-- Revenue, as Plausible's Events API sends it (`$` or `revenue`: an amount and an ISO 4217
-- currency): stored on the event, in millionths of the currency unit so that sums are
-- exact; 0 and '' on events without revenue. Events stored before keep those defaults.
-- A custom-event goal may name the currency it reports revenue in (a revenue goal):
-- `total_revenue` and `average_revenue` sum the revenue of its events in that currency.
ALTER TABLE events{{on_cluster}}
    ADD COLUMN IF NOT EXISTS revenue_amount Int64 CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS revenue_currency LowCardinality(String) CODEC(ZSTD(1));

ALTER TABLE goals{{on_cluster}} ADD COLUMN IF NOT EXISTS currency LowCardinality(String) DEFAULT '';
