"""``include.total_rows``: how many rows an answer has before pagination.

Counted by the store over the very query the answer's rows come from, unpaginated:
the same source, sample, filters and k-threshold folding, so the count is that of the
rows a client would see by paging through them all.
"""

from __future__ import annotations

from collector.reports.builder import BuiltQuery
from collector.storage import Store


def count_rows(store: Store, unpaginated: BuiltQuery) -> int:
    found = store.rows(f"SELECT count() FROM ({unpaginated.sql})", unpaginated.parameters)
    return int(found[0][0]) if found else 0
