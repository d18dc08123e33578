"""Reports: aggregated trend queries over visits and events (Stats API v2 shape)."""
