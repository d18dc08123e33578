"""Bytes on disk per stored event, across every table, at a given demo size.

    python benchmarks/bench_storage.py --events 10000000 [--days 90] [--data-dir DIR]

Generates demo traffic (``collector.reports.demo``, the same generator as
``collector demo``) into a fresh embedded engine, merges every table to its
steady state (``OPTIMIZE ... FINAL``: what background merges reach on a live
store), then prints each table's rows and bytes on disk, the largest columns,
and the total divided by the events stored: the figure README quotes.
"""

from __future__ import annotations

import sys

from demo_store import demo_arguments, open_demo_store

from collector.reports.demo import generate, progress_bar
from collector.storage import Store

SITE = "demo.example"


def table_sizes(store: Store) -> list[tuple[str, int, int]]:
    """(table, rows, bytes on disk) of every table with active parts."""
    found = store.rows(
        "SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts "
        "WHERE database = currentDatabase() AND active GROUP BY table ORDER BY table")
    return [(str(table), int(rows), int(size)) for table, rows, size in found]


def largest_columns(store: Store, count: int = 12) -> list[tuple[str, str, int, int]]:
    """(table, column, compressed, uncompressed bytes) of the biggest columns."""
    found = store.rows(
        "SELECT table, column, sum(column_data_compressed_bytes), "
        "sum(column_data_uncompressed_bytes) FROM system.parts_columns "
        "WHERE database = currentDatabase() AND active GROUP BY table, column "
        "ORDER BY 3 DESC LIMIT {count:UInt32}", {"count": count})
    return [(str(t), str(c), int(z), int(u)) for t, c, z, u in found]


def settle(store: Store) -> None:
    """Merge every table to one part per partition, as background merges eventually do."""
    for table, _, _ in table_sizes(store):
        store.command(f"OPTIMIZE TABLE `{table}` FINAL")


def main() -> int:
    arguments = demo_arguments(__doc__.splitlines()[0]).parse_args()
    store = open_demo_store(arguments, "bench-storage-", "bench_storage")
    result = generate(store, SITE, arguments.events, arguments.days, progress=progress_bar)
    print(f"\n{result.events:,} events, {result.visits:,} visits in {result.seconds:.1f} s "
          f"({result.events_per_second:,.0f} events/s)", file=sys.stderr)
    settle(store)
    sizes = table_sizes(store)
    total = sum(size for _, _, size in sizes)
    print(f"{'table':<22} {'rows':>12} {'bytes':>14} {'B/row':>7} {'B/event':>8}")
    for table, rows, size in sizes:
        print(f"{table:<22} {rows:>12,} {size:>14,} {size / max(rows, 1):>7.1f} "
              f"{size / result.events:>8.2f}")
    print(f"{'all tables':<22} {'':>12} {total:>14,} {'':>7} {total / result.events:>8.2f}")
    print("\nlargest columns (compressed / uncompressed bytes):")
    for table, column, compressed, uncompressed in largest_columns(store):
        print(f"  {table}.{column:<20} {compressed:>12,} {uncompressed:>14,} "
              f"{compressed / result.events:>6.2f} B/event")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
