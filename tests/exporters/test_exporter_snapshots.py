"""The snapshot stream: what the writer leaves on disk and what the reader salvages from damage."""

from __future__ import annotations

import json
from pathlib import Path

from exporters.histogram import bucket_edges, decode_hdr
from exporters.stats import StatsStore
from peakload.core.records import read_snapshots, split_snapshots
from peakload.core.snapshots import SNAPSHOT_FILE, SnapshotWriter

CONTRACT_KEYS = ["v", "seq", "t_start", "t_end", "users", "workers", "target_rate", "requests", "business", "arrivals", "cpu_warning"]


def _write_run(path: Path, intervals: int = 3) -> None:
    store = StatsStore(edges=bucket_edges())
    writer = SnapshotWriter(path, header={"run_id": "r-1", "profile": "smoke"})
    for i in range(intervals):
        for _ in range(10 * (i + 1)):
            store.record("/api/products/{sku}", "GET", 0.05, 200)
        store.record("/api/orders", "POST", 0.4, 503, "http_5xx")
        store.add_business("product_views", 10 * (i + 1))
        writer.write_interval(
            store.drain_delta(), t_start=100.0 + 2 * i, t_end=102.0 + 2 * i, users=20, workers=2, target_rate=None, cpu_warning=i == 2
        )
    writer.close(reason="completed")


def test_writer_output_follows_the_contract(tmp_path: Path) -> None:
    path = tmp_path / SNAPSHOT_FILE
    _write_run(path)
    raw = path.read_text().splitlines()
    assert len(raw) == 5
    first, *middle, last = (json.loads(x) for x in raw)
    assert first["kind"] == "header" and first["v"] == 1 and first["run_id"] == "r-1"
    assert last == {"v": 1, "kind": "end", "reason": "completed", "intervals": 3}
    assert [list(m) for m in middle] == [CONTRACT_KEYS] * 3
    assert [m["seq"] for m in middle] == [1, 2, 3]
    assert [m["cpu_warning"] for m in middle] == [False, False, True]
    row = next(r for r in middle[1]["requests"] if r["name"] == "/api/products/{sku}")
    assert (row["method"], row["count"], row["failures"], row["status"]) == ("GET", 20, 0, {"2xx": 20})
    hist = decode_hdr(row["hdr"])
    assert hist.get_total_count() == 20
    assert hist.values_are_equivalent(hist.get_value_at_percentile(50), 50_000)  # µs, 3 significant digits
    orders = next(r for r in middle[1]["requests"] if r["name"] == "/api/orders")
    assert orders["errors"] == {"http_5xx": 1} and orders["status"] == {"5xx": 1}


def test_reader_survives_a_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / SNAPSHOT_FILE
    _write_run(path)
    text = path.read_text().splitlines(keepends=True)
    # the writer died while writing interval 3: header, 1, 2 and half of 3 are on disk
    path.write_text("".join(text[:3]) + text[3][: len(text[3]) // 2])
    lines, problems = read_snapshots(path)
    header, intervals, end = split_snapshots(lines)
    assert header is not None and header["run_id"] == "r-1"
    assert [i["seq"] for i in intervals] == [1, 2]
    assert end is None
    assert len(problems) == 1 and "line 4" in problems[0] and "truncated last line" in problems[0]


def test_reader_skips_corrupt_lines_and_reports_gaps(tmp_path: Path) -> None:
    path = tmp_path / SNAPSHOT_FILE
    _write_run(path, intervals=4)
    text = path.read_text().splitlines(keepends=True)
    text[2] = "{not json\n"  # interval 2 damaged
    text[3] = "[1, 2]\n"  # interval 3 replaced by something else
    path.write_text("".join(text))
    lines, problems = read_snapshots(path)
    header, intervals, end = split_snapshots(lines)
    assert [i["seq"] for i in intervals] == [1, 4]
    assert end is not None and end["reason"] == "completed"
    assert problems[0].startswith(f"{SNAPSHOT_FILE} line 3: not valid JSON")
    assert "truncated" not in problems[0]
    assert problems[1] == f"{SNAPSHOT_FILE} line 4: expected a JSON object, got list; skipped"
    assert problems[2] == f"{SNAPSHOT_FILE} line 5: expected seq 2, got 4 (lines missing or out of order)"


def test_reader_reports_a_missing_file(tmp_path: Path) -> None:
    lines, problems = read_snapshots(tmp_path / "nope" / SNAPSHOT_FILE)
    assert lines == [] and problems == [f"{tmp_path / 'nope' / SNAPSHOT_FILE}: file not found"]


def test_a_reused_results_folder_reads_as_two_runs(tmp_path: Path) -> None:
    path = tmp_path / SNAPSHOT_FILE
    _write_run(path, intervals=2)
    _write_run(path, intervals=2)
    lines, problems = read_snapshots(path)
    assert problems == []
    assert [o.get("kind", o.get("seq")) for o in lines] == ["header", 1, 2, "end", "header", 1, 2, "end"]


def test_exporters_never_import_locust_or_gevent() -> None:
    # reports and dashboards import exporters; locust would monkey-patch their process
    import subprocess
    import sys

    code = "import sys, exporters, exporters.settings; print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
