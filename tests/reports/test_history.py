"""`peakload history RESULTS_ROOT`: run folders written by the real reports, listed in time order (not name
order) with their git revision, verdict and headline figures; a self-contained HTML trend; broken folders
listed as skipped with the reason, never a crash."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from peakload.cli import main
from peakload.core import parse_threshold
from peakload.core.records import RunMeta
from reports.build import write_reports
from reports.synthetic import write_synthetic_run
from tests.command import peakload

T0 = 1_764_000_000.0
# folder name, start offset (s), git revision, profile, fail every n-th request (0: none)
RUNS = [
    ("zz-first", 0, "a1b2c3d4e5f60718", "shop", 0),
    ("mm-second", 3600, "b2c3d4e5f6071829", "shop", 2),
    ("aa-third", 7200, "c3d4e5f60718293a", "shop", 0),
    ("other", 5000, "d4e5f60718293a4b", "other-profile", 0),
]


def _run(root: Path, name: str, offset: float, rev: str, profile: str, fail_every: int) -> Path:
    d = root / name
    write_synthetic_run(d, names=2, seconds=10, rps_per_name=20, seed=int(offset) + 1, fail_every=fail_every, t0=T0 + offset)
    meta = RunMeta(run_id=f"run-{name}", profile=profile, git_revision=rev, started_ts=T0 + offset, ended_ts=T0 + offset + 10)
    (d / "run.json").write_text(json.dumps({k: v for k, v in meta.to_json().items() if v is not None}))
    write_reports(d, [parse_threshold("all", "error_ratio < 1%")])
    return d


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    for spec in RUNS:
        _run(root, *spec)
    # what a results root also holds: a run still going, a truncated and a foreign summary, stray files
    going = root / "still-going"
    write_synthetic_run(going, names=1, seconds=4, end=False)
    cut = _run(root, "truncated", 9000, "e5f60718293a4b5c", "shop", 0)
    text = (cut / "summary.json").read_text()
    (cut / "summary.json").write_text(text[: len(text) // 2])
    foreign = root / "foreign"
    foreign.mkdir()
    (foreign / "summary.json").write_text(json.dumps({"schema": "k6/summary", "total": {}}))
    (root / "notes").mkdir()
    (root / "README.txt").write_text("not a run\n")
    return root


def _summary(root: Path, name: str) -> dict:
    return json.loads((root / name / "summary.json").read_text())


def test_history_lists_runs_in_time_order_with_revision_and_verdict(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["history", str(root), "--profile", "shop"]) == 0
    out = capsys.readouterr().out.splitlines()
    table = [line for line in out[1:] if not line.startswith("skipped ")]
    assert [line.split()[0] for line in table] == ["run-zz-first", "run-mm-second", "run-aa-third"]  # by start, not by name
    for line, (name, _, rev, _, fail_every) in zip(table, RUNS[:3], strict=True):
        s = _summary(root, name)
        assert rev[:12] in line and s["started"] in line and f"{s['status']} ({s['exit_code']})" in line
        assert f"{s['total']['p95_ms']:.1f}" in line and f"{s['total']['requests']}" in line
        assert s["status"] == ("failed" if fail_every else "passed")
    skipped = {line.split()[1].rstrip(":"): line for line in out if line.startswith("skipped ")}
    assert set(skipped) == {"still-going", "truncated", "foreign", "notes"}
    assert "no summary.json" in skipped["still-going"] and "peakload report" in skipped["still-going"]
    assert "invalid JSON" in skipped["truncated"]
    assert "not a peakload summary" in skipped["foreign"] and "not a results folder" in skipped["notes"]
    assert main(["history", str(root)]) == 0  # without --profile: the other profile's run too, in its place in time
    ids = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:] if not line.startswith("skipped ")]
    assert ids == ["run-zz-first", "run-mm-second", "run-other", "run-aa-third"]


def test_history_json_carries_each_summarys_figures(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["history", str(root), "--format", "json", "--profile", "shop"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["folder"] for r in doc["runs"]] == ["zz-first", "mm-second", "aa-third"]
    for r in doc["runs"]:
        s = _summary(root, r["folder"])
        assert r["git_revision"] == s["git_revision"] and r["status"] == s["status"] and r["started"] == s["started"]
        for k in ("requests", "rps", "error_ratio", "p95_ms", "p99_ms"):
            assert r[k] == s["total"][k], k
    assert {x["folder"] for x in doc["skipped"]} == {"still-going", "truncated", "foreign", "notes"}


def test_history_html_is_a_self_contained_trend(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "trend.html"
    assert main(["history", str(root), "--profile", "shop", "--out", str(out)]) == 0
    page = out.read_text()
    assert "<script" not in page and not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # opens offline
    for chart in ("latency", "errors", "throughput"):
        assert f'id="{chart}"' in page
    # p95 and p99 (2) + errors + throughput: one point a run each, with run id, revision and value on hover
    tips = re.findall(r"<circle [^>]*><title>([^<]*)</title>", page)
    assert len(tips) == 4 * 3
    first = _summary(root, "zz-first")
    assert any(t.startswith(f"p95 {first['total']['p95_ms']:g} ms — run-zz-first") and "a1b2c3d4e5f60718" in t for t in tips), tips
    assert page.index("run-zz-first") < page.index("run-mm-second") < page.index("run-aa-third")
    assert 'id="skipped"' in page and "truncated" in page


def test_history_bad_input_is_one_line_exit_2_and_no_run_is_exit_3(tmp_path: Path) -> None:
    for args, names in (
        ([str(tmp_path / "nope")], "does not exist"),
        ([str(tmp_path / "file.txt")], "is a file"),
        ([str(tmp_path), "--out", str(tmp_path / "trend.txt")], "--out"),
    ):
        (tmp_path / "file.txt").write_text("x")
        res = peakload("history", *args)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and names in res.stderr, res
        assert "Traceback" not in res.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    res = peakload("history", str(empty))
    assert res.returncode == 3 and "no readable run" in res.stderr, res
