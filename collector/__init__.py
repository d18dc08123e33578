"""A privacy-first web analytics collector on ClickHouse."""

__version__ = "0.1.0"
