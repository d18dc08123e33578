"""Export speed and memory: demo events exported in each format, RSS measured per export.

    python benchmarks/bench_export.py --events 10000000 [--days 90] [--data-dir DIR]

Generates demo traffic (``collector.reports.demo``) into an embedded engine, then
runs ``export.export`` once per format (and once with ``--aggregate``), each in a
process of its own: the engine's memory is counted there, not hidden in another
process. Before an export starts, its process has opened and migrated the store
(the baseline, ``VmRSS``); its peak is reset then (``/proc/self/clear_refs``) and
read after the export (``VmHWM``). The figure that counts is the peak above the
baseline, which the issue bounds at 200 MB for 10M events.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from demo_store import demo_arguments, open_demo_store

from collector.operations import OperationContext
from collector.operations.export import export
from collector.reports.demo import generate, progress_bar
from collector.settings import Settings

SITE = "demo.example"
DATABASE = "bench_export"
RSS_LIMIT_MB = 200
RUNS = (("jsonl", False), ("csv", False), ("parquet", False), ("jsonl", True))


def memory_kib() -> dict[str, int]:
    """This process's resident set now (VmRSS) and at its peak (VmHWM), in KiB."""
    status = Path("/proc/self/status").read_text()
    return {name: int(re.search(rf"{name}:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
            for name in ("VmRSS", "VmHWM")}


def export_once(arguments: argparse.Namespace) -> dict[str, Any]:
    """One export in this process (the child): its time, rows, bytes and memory."""
    store = open_demo_store(arguments, "bench-export-", DATABASE)
    output = Path(arguments.output_dir) / f"demo.{arguments.format}"
    first = (date.today() - timedelta(days=arguments.days + 1)).isoformat()
    baseline = memory_kib()["VmRSS"]
    Path("/proc/self/clear_refs").write_text("5")  # the peak restarts from here
    started = time.perf_counter()
    result = export(OperationContext(store, Settings.from_env({})), SITE, first,
                    date.today().isoformat(), arguments.format, aggregate=arguments.aggregate,
                    output=str(output))
    seconds = time.perf_counter() - started
    peak = memory_kib()["VmHWM"]
    size = sum(Path(name).stat().st_size for name in result["files"])
    for name in result["files"]:
        Path(name).unlink()
    store.close()
    return {"seconds": seconds, "rows": result["rows"], "bytes": size,
            "baseline_kib": baseline, "peak_kib": peak}


def generate_once(arguments: argparse.Namespace) -> dict[str, Any]:
    """The demo traffic (in this process, the child: the engine holds its directory for
    the process's lifetime)."""
    store = open_demo_store(arguments, "bench-export-", DATABASE)
    result = generate(store, SITE, arguments.events, arguments.days, progress=progress_bar)
    print(file=sys.stderr)
    store.close()
    return {"events": result.events, "seconds": result.seconds}


def child(arguments: argparse.Namespace, data_dir: Path, *options: str) -> dict[str, Any]:
    """Run one step of this benchmark in a process of its own; its JSON line."""
    command = [sys.executable, __file__, "--data-dir", str(data_dir), "--days",
               str(arguments.days), "--events", str(arguments.events), *options]
    finished = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(finished.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = demo_arguments(__doc__.splitlines()[0])
    parser.add_argument("--step", choices=("generate", "export"), help=argparse.SUPPRESS)
    parser.add_argument("--format", choices=("csv", "jsonl", "parquet"), help=argparse.SUPPRESS)
    parser.add_argument("--aggregate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output-dir", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.step:
        step = generate_once if arguments.step == "generate" else export_once
        print(json.dumps(step(arguments)))
        return 0
    data_dir = arguments.data_dir or Path(tempfile.mkdtemp(prefix="bench-export-"))
    demo = child(arguments, data_dir, "--step", "generate")
    events = demo["events"]
    print(f"{events:,} demo events in {demo['seconds']:.1f} s ({data_dir})", file=sys.stderr)
    output_dir = tempfile.mkdtemp(prefix="bench-export-out-")
    print(f"{'export':<16} {'seconds':>8} {'events/s':>10} {'x jsonl':>8} {'file MB':>9} "
          f"{'base MB':>8} {'peak MB':>8} {'above':>7}")
    reference, worst = 0.0, 0.0
    for format_name, aggregate in RUNS:
        measured = child(arguments, data_dir, "--step", "export", "--format", format_name,
                         "--output-dir", output_dir, *(["--aggregate"] if aggregate else []))
        seconds = measured["seconds"]
        reference = reference or seconds
        above = (measured["peak_kib"] - measured["baseline_kib"]) / 1024
        worst = max(worst, above)
        label = format_name + (" --aggregate" if aggregate else "")
        print(f"{label:<16} {seconds:>8.1f} {events / seconds:>10,.0f} "
              f"{seconds / reference:>8.2f} {measured['bytes'] / 1e6:>9.1f} "
              f"{measured['baseline_kib'] / 1024:>8.0f} {measured['peak_kib'] / 1024:>8.0f} "
              f"{above:>7.0f}")
    verdict = "within" if worst < RSS_LIMIT_MB else "OVER"
    print(f"largest peak above the baseline: {worst:.0f} MB ({verdict} {RSS_LIMIT_MB} MB)")
    return 0 if worst < RSS_LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
