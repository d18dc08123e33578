"""HTTP endpoints, one module per kind of page; each reads what it needs from ``app.state``."""
