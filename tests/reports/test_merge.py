"""`peakload merge`: three shards that ran at the same time against one calibration target, merged into one run.

The shards are real `peakload run` runs (the CLI, child processes), started together against one
`python -m storefront calibrate` on loopback with one small single_request profile (so each gets its
own run id). The merged run must count exactly what the target served, its percentiles must be those
of the HDR merge of every shard's histograms (computed here with the hdrhistogram library from the
shards' own snapshot lines), and a damaged shard must make the merge exit 3 naming that shard.
The loads take about 6 s (the three at once); every merge after that reads and writes files only.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from tests.openmodel.harness import PY, ROOT, Scenario, calibration_target, write_profile

pytestmark = pytest.mark.load  # real Locust loads on loopback

SHARDS = 3
RATE, SECONDS = 30.0, 6.0  # per shard: 180 arrivals each
THRESHOLDS = 'thresholds:\n  all: ["p99 < 5s", "error_ratio < 0.01"]\n'
SCENARIO = Scenario(service_ms=(5.0, 40.0), stall=0.3, period=3.0)  # a 0.3 s stall every 3 s: a tail to merge


def _merge(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "peakload", "merge", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three shards run concurrently (the first a master with one worker); their folders, and what the target served."""
    work = tmp_path_factory.mktemp("fleet")
    profile = write_profile(work / "shard.yaml", rate=RATE, seconds=SECONDS, pool=40, extra=THRESHOLDS)
    with calibration_target(workdir=work / "target", scenario=SCENARIO) as target:
        procs = [
            subprocess.Popen(
                [
                    PY,
                    "-m",
                    "peakload",
                    "run",
                    "--profile",
                    str(profile),
                    "--target",
                    target.url,
                    "--results",
                    str(work / f"s{i}"),
                    "--quiet",
                ]
                + (["--workers", "1"] if i == 0 else []),  # shard 0: a master and its worker (its last line ends with the worker's)
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(SHARDS)
        ]
        outs = [p.communicate(timeout=120) for p in procs]
        served = target.stats()["requests"]["GET /"]
    folders = []
    for i, (proc, (out, err)) in enumerate(zip(procs, outs, strict=True)):
        found = list((work / f"s{i}").iterdir())
        assert proc.returncode == 0 and len(found) == 1, f"shard {i} exit {proc.returncode}: {out[-500:]} {err[-1500:]}"
        folders.append(found[0])
    return {"work": work, "folders": folders, "served": served}


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def _lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "snapshots.jsonl").read_text().splitlines() if line.strip()]


def _copy(fleet: dict, tmp_path: Path) -> list[Path]:
    out = []
    for i, f in enumerate(fleet["folders"]):
        dst = tmp_path / f"shard{i}" / f.name
        shutil.copytree(f, dst)
        out.append(dst)
    return out


def test_merged_counts_are_what_the_target_served_and_percentiles_are_the_hdr_merge(fleet: dict, tmp_path: Path) -> None:
    folders = fleet["folders"]
    res = _merge(*folders, "--out", tmp_path / "merged")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PASSED (exit 0)" in res.stdout and "merged 3 shard(s)" in res.stdout
    merged = _summary(tmp_path / "merged")
    shards = [_summary(f) for f in folders]
    print(f"shards {[s['total']['requests'] for s in shards]}, merged {merged['total']['requests']}, target served {fleet['served']}")
    assert merged["total"]["requests"] == sum(s["total"]["requests"] for s in shards) == fleet["served"]
    assert merged["requests"]["GET /"]["requests"] == fleet["served"]
    assert merged["total"]["failures"] == sum(s["total"]["failures"] for s in shards)
    for key in ("scheduled", "dropped"):
        assert merged["arrivals"][key] == sum(s["arrivals"][key] for s in shards)
    assert merged["arrivals"]["scheduled"] == SHARDS * int(RATE * SECONDS)

    # the reference: every shard's interval histograms decoded and added by the hdrhistogram library itself
    ref = HdrHistogram(1, 3_600_000_000, 3)
    for f in folders:
        for obj in _lines(f):
            for row in obj.get("requests") or []:
                if row.get("hdr"):
                    ref.add(HdrHistogram.decode(row["hdr"]))
    assert ref.get_total_count() == fleet["served"]
    for p in (50, 95, 99):
        want = ref.get_value_at_percentile(p) / 1000
        got = merged["total"][f"p{p}_ms"]
        print(f"p{p}: merged {got} ms, HDR merge of the shards {want} ms, shards {[s['total'][f'p{p}_ms'] for s in shards]}")
        assert got == pytest.approx(want, rel=1e-3)  # HDR precision: 3 significant digits
    assert merged["total"]["max_ms"] == pytest.approx(ref.get_max_value() / 1000, rel=1e-3)

    # one line per wall-clock slot, each inside its slot; run.json lists the shards
    lines = _lines(tmp_path / "merged")
    interval = lines[0]["interval_s"]
    ivs = [o for o in lines if "kind" not in o]
    slots = [math.ceil((o["t_end"] - 1e-6) / interval) for o in ivs]
    assert slots == sorted(set(slots))
    # a line cut on a boundary lies inside its slot; only the lines written as the shards stopped may start before it
    on_boundary = [(o, k) for o, k in zip(ivs, slots, strict=True) if abs(o["t_end"] - k * interval) < 1e-6]
    assert len(on_boundary) >= SECONDS / interval - 1
    assert all(o["t_start"] >= (k - 1) * interval - 1e-6 for o, k in on_boundary)
    assert all(o["t_end"] <= ivs[-1]["t_end"] for o in ivs)
    assert lines[-1]["kind"] == "end" and lines[-1]["reason"] == "completed"
    meta = json.loads((tmp_path / "merged" / "run.json").read_text())
    assert [s["folder"] for s in meta["shards"]] == [str(f) for f in folders]
    assert [s["run_id"] for s in meta["shards"]] == [_summary(f)["run_id"] for f in folders]
    assert meta["started_ts"] == min(json.loads((f / "run.json").read_text())["started_ts"] for f in folders)
    assert meta["ended_ts"] == max(json.loads((f / "run.json").read_text())["ended_ts"] for f in folders)
    assert meta["profile"] == "calibration-constant" and meta["launched_by"] == "peakload merge"
    # three run ids: each shard's books are its own; the fleet's reconciliation is n/a, never a sum
    assert "n/a for the fleet" in (merged["reconciliation"] or {}).get("error", "")

    # `peakload gate` on the merged folder gives the same verdict
    gate = subprocess.run([PY, "-m", "peakload", "gate", str(tmp_path / "merged")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert gate.returncode == 0 and f"{fleet['served']} requests" in gate.stdout


def test_events_are_interleaved_by_time_with_their_shard(fleet: dict, tmp_path: Path) -> None:
    folders = _copy(fleet, tmp_path)
    t0 = json.loads((folders[0] / "run.json").read_text())["started_ts"]
    for i, f in enumerate(folders):
        with open(f / "events.jsonl", "a", encoding="utf-8") as fh:
            for k in range(2):
                fh.write(json.dumps({"t": t0 + 1 + i * 0.1 + k, "kind": "chaos", "name": f"mark {i}.{k}", "detail": ""}) + "\n")
    res = _merge(*folders, "--out", tmp_path / "merged")
    assert res.returncode == 0, res.stdout + res.stderr
    events = [e for e in _summary(tmp_path / "merged")["events"] if e["kind"] == "chaos"]
    assert [e["name"] for e in events] == ["mark 0.0", "mark 1.0", "mark 2.0", "mark 0.1", "mark 1.1", "mark 2.1"]
    assert [e["shard"] for e in events[:3]] == [f"shard {f}" for f in folders]


def _cut_mid_line(f: Path) -> None:
    data = (f / "snapshots.jsonl").read_bytes()
    (f / "snapshots.jsonl").write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) + 40])  # into the last line


def _drop_last_intervals(f: Path) -> None:
    lines = (f / "snapshots.jsonl").read_text().splitlines(keepends=True)
    (f / "snapshots.jsonl").write_text("".join(lines[:-3] + lines[-1:]))  # two intervals gone, the end line kept


def _kill(f: Path) -> None:
    """What a killed shard leaves: no end line, no outcome, no summary."""
    lines = (f / "snapshots.jsonl").read_text().splitlines(keepends=True)
    (f / "snapshots.jsonl").write_text("".join(lines[:-2]))
    (f / "outcome.json").unlink()
    (f / "summary.json").unlink()


DAMAGE = {
    "snapshots cut mid-line": (_cut_mid_line, "not valid JSON (truncated last line"),
    "last intervals dropped": (_drop_last_intervals, "the end line counts"),
    "summary deleted": (lambda f: (f / "summary.json").unlink(), "no summary.json: the run did not end"),
    "shard killed": (_kill, "no end line: the run did not end"),
    "folder missing": (lambda f: shutil.rmtree(f), "folder not found"),
    "not a results folder": (lambda f: [p.unlink() for p in f.iterdir() if p.is_file()], "not a results folder"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_shard_makes_the_merge_incomplete_exit_3_naming_it(fleet: dict, tmp_path: Path, damage: str) -> None:
    folders = _copy(fleet, tmp_path)
    hurt, expected = DAMAGE[damage]
    hurt(folders[1])
    res = _merge(*folders, "--out", tmp_path / "merged")
    assert res.returncode == 3, res.stdout + res.stderr
    verdict = next(line for line in res.stdout.splitlines() if line.startswith("run "))
    assert "INVALID (exit 3) — incomplete merge: " in verdict
    assert f"shard {folders[1]}: " in verdict and expected in verdict, verdict
    assert str(folders[0]) not in verdict and str(folders[2]) not in verdict
    # written all the same, so it can be inspected, and `peakload gate` keeps saying so
    assert (tmp_path / "merged" / "summary.json").exists()
    gate = subprocess.run([PY, "-m", "peakload", "gate", str(tmp_path / "merged")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert gate.returncode == 3 and "incomplete merge" in gate.stdout


def test_a_shard_missing_from_the_set_is_named_by_its_index(fleet: dict, tmp_path: Path) -> None:
    folders = _copy(fleet, tmp_path)
    for i, f in enumerate(folders):
        meta = json.loads((f / "run.json").read_text())
        (f / "run.json").write_text(json.dumps({**meta, "shard": {"index": i, "of": 3}}))
    res = _merge(folders[0], folders[2], "--out", tmp_path / "merged")
    assert res.returncode == 3
    assert "incomplete merge: shard 1/3: missing (no folder given for it)" in res.stdout


def test_a_shard_whose_intervals_are_not_on_the_wall_clock_boundaries_is_a_problem(fleet: dict, tmp_path: Path) -> None:
    folders = _copy(fleet, tmp_path)
    lines = _lines(folders[2])
    shift = lines[0]["interval_s"] / 2
    shifted = [o if "kind" in o else {**o, "t_start": o["t_start"] + shift, "t_end": o["t_end"] + shift} for o in lines]
    (folders[2] / "snapshots.jsonl").write_text("".join(json.dumps(o) + "\n" for o in shifted))
    res = _merge(*folders, "--out", tmp_path / "merged")
    assert res.returncode == 3
    assert f"incomplete merge: shard {folders[2]}: snapshots.jsonl: interval " in res.stdout and "not aligned" in res.stdout


def _one_line_exit_2(res: subprocess.CompletedProcess, *words: str) -> None:
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr
    assert all(w in res.stderr for w in words), res.stderr


def test_bad_input_is_one_line_exit_2(fleet: dict, tmp_path: Path) -> None:
    a, b, c = fleet["folders"]
    _one_line_exit_2(_merge("--out", tmp_path / "m0"), "at least one results folder")
    _one_line_exit_2(_merge(a, b, a, "--out", tmp_path / "m1"), "given twice")
    (tmp_path / "file").write_text("x")
    _one_line_exit_2(_merge(a, b, "--out", tmp_path / "file"), "--out", "not a folder")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    _one_line_exit_2(_merge(a, b, "--out", tmp_path / "full"), "--out", "not empty")
    _one_line_exit_2(_merge(a, b, "--out", b), "--out", "one of the shard folders")
    assert not (tmp_path / "m0").exists() and not (tmp_path / "m1").exists()


def test_shards_of_different_profiles_are_refused(fleet: dict, tmp_path: Path) -> None:
    folders = _copy(fleet, tmp_path)
    copy = folders[2] / "profile.yaml"
    copy.write_text(copy.read_text().replace(f"rate: {RATE:g}", f"rate: {RATE + 1:g}"))
    res = _merge(*folders, "--out", tmp_path / "merged")
    _one_line_exit_2(res, f"shard {folders[2]} ran profile 'calibration-constant'", "merge the shards of one profile")
    assert not (tmp_path / "merged").exists()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-s"]))
