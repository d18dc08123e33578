-- What the ClickHouse user `grafana` may read: the tables the dashboards query, nothing
-- else (tests/test_grafana.py keeps this list equal to theirs). Never `salts`: with a
-- day's salt, a visitor hash could be tested against guessed addresses. Nor `api_keys`,
-- `audit`, `goals` or the settings tables. Run by the compose service `grafana-reader`
-- right after it (re)creates the user with readonly = 2.
GRANT SELECT ON collector.events TO grafana;
GRANT SELECT ON collector.visits TO grafana;
GRANT SELECT ON collector.visits_rollup TO grafana;
GRANT SELECT ON collector.visits_rollup_daily TO grafana;
GRANT SELECT ON collector.drops TO grafana;
GRANT SELECT ON collector.sites TO grafana;
