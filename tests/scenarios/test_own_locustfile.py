"""A user's own locustfile under peakload: `run --locustfile` (closed, open, workers), plain `locust -f`, bad files.

The locustfile here is written by the test into a temporary folder (not one of the repo's); the examples
under examples/ run too, closed and open model, against the embedded storefront.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.command import only_dir, peakload

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# A visit: wait 300 ms after the arrival's instant (generator-side lag the intended-start basis must count),
# then the home screen (first request), then a product that does not exist (always fails, with a message).
OWN_LOCUSTFILE = '''
import gevent
from locust import FastHttpUser, constant

from scenarios.custom import journey


class Visitor(FastHttpUser):
    wait_time = constant(0.05)

    @journey
    def visit(self):
        gevent.sleep(0.3)
        self.client.get("/api/home")
        with self.client.get("/api/products/NOPE-1", name="/api/products/[missing]", catch_response=True) as resp:
            if resp.status_code == 404:
                resp.failure("the product is missing (404)")


class Idle(FastHttpUser):
    """Not picked by the profile (locustfile.classes), so never run."""

    def on_start(self):
        raise RuntimeError("Idle must not run")
'''


def _profile(tmp: Path, name: str, thresholds: Any, *, arrivals: bool = True, locustfile: str = "own_locustfile.py") -> Path:
    body: dict[str, Any] = {
        "version": "peakload/v1",
        "name": name,
        "seed": 3,
        "slo": None,
        "locustfile": {"path": locustfile, "classes": ["Visitor"]},
        "thresholds": thresholds,
    }
    if arrivals:
        body["arrivals"] = {"kind": "constant", "stages": [{"name": "steady", "duration": "6s", "rate": 10}], "pool": 30}
    else:
        body["shape"] = {"stages": [{"name": "steady", "kind": "steady", "duration": "5s", "users": 4}]}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


@pytest.fixture
def own(tmp_path: Path) -> Path:
    (tmp_path / "own_locustfile.py").write_text(OWN_LOCUSTFILE)
    return tmp_path


FAILING = {"/api/products/[missing]": ["error_ratio < 1%"], "business": ["dropped_ratio < 5%"]}
PASSING = {"GET /api/home": ["error_ratio < 1%", "p50 > 250ms"], "business": ["dropped_ratio < 5%"]}


def test_own_locustfile_open_model_with_workers_fails_and_passes_and_plain_locust_agrees(own: Path, storefront: Any) -> None:
    failing = _profile(own, "own-failing", FAILING)
    proc = peakload("run", "--profile", str(failing), "--workers", "2", "--results", str(own / "run-fail"), "--quiet")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    run_dir = only_dir(own / "run-fail")
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["latency_basis"] == "intended-start"
    assert s["workers"] == 2
    assert set(s["requests"]) == {"GET /api/home", "GET /api/products/[missing]"}  # Idle never ran
    missing = s["requests"]["GET /api/products/[missing]"]
    assert missing["failures"] == missing["requests"] > 0
    assert missing["failure_reasons"] == [{"message": "the product is missing (404)", "count": missing["failures"]}]
    assert s["arrivals"]["scheduled"] == 60 and s["arrivals"]["dropped"] == 0
    # the first request of each visit is measured from the arrival's instant: the 300 ms before it count ...
    assert s["requests"]["GET /api/home"]["p50_ms"] >= 300
    # ... the second is sent when the visitor clicks: its own service time only
    assert missing["p95_ms"] < 300
    report = (run_dir / "report.html").read_text()
    assert "/api/products/[missing]" in report and "the product is missing (404)" in report and "intended-start" in report
    assert "the product is missing (404)" in (run_dir / "junit.xml").read_text()
    assert "the product is missing (404)" in (run_dir / "summary.md").read_text()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["launched_by"] == "peakload run" and meta["user_classes"] == ["Visitor"]
    assert (run_dir / "locustfile" / "own_locustfile.py").read_text() == OWN_LOCUSTFILE

    passing = _profile(own, "own-passing", PASSING)
    proc = peakload("run", "--profile", str(passing), "--workers", "2", "--results", str(own / "run-pass"), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert json.loads((only_dir(own / "run-pass") / "summary.json").read_text())["status"] == "passed"

    # plain Locust on the same file and profile writes a folder the gate judges the same way (exit 1)
    cwd = own / "plain"
    cwd.mkdir()
    env = {**os.environ, "PEAKLOAD_PROFILE": str(failing), "PEAKLOAD_RUN_ID": "plain-own-1"}
    env.pop("PEAKLOAD_RESULTS_DIR", None)
    plain = subprocess.run(
        [sys.executable, "-m", "locust", "-f", f"{ROOT / 'scenarios' / 'plugin.py'},{own / 'own_locustfile.py'}", "Visitor"]
        + ["--headless", "--host", storefront.url, "--processes", "2", "--only-summary", "--loglevel", "WARNING"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    folder = cwd / "results" / "plain-own-1"
    assert "peakload: results in results/plain-own-1/" in plain.stderr, plain.stdout[-2000:] + plain.stderr[-2000:]
    assert {"run.json", "profile.yaml", "snapshots.jsonl"} <= {p.name for p in folder.iterdir()}
    assert json.loads((folder / "run.json").read_text())["launched_by"] == "locust"
    gate = peakload("gate", str(folder))
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "the product is missing (404)" in (folder / "summary.md").read_text()


def test_no_thresholds_by_design_passes_and_all_skipped_is_not_a_pass(own: Path) -> None:
    by_design = _profile(own, "own-by-design", "none", arrivals=False)
    proc = peakload("run", "--profile", str(by_design), "--results", str(own / "a"), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    run_dir = only_dir(own / "a")
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "ungated" and s["thresholds"] == [] and s["total"]["requests"] > 0
    assert "no thresholds by design" in (run_dir / "summary.md").read_text().lower()
    assert peakload("gate", str(run_dir)).returncode == 0

    # a step the platform does not offer (the example app dialect has no search) cannot be judged: every
    # threshold is skipped, so nothing was judged
    (own / "app_shop.py").write_text((EXAMPLES / "app_dialect" / "app_shop.py").read_text())
    skipped = _profile(own, "own-skipped", {"step:search": ["error_ratio < 1%", "p95 < 1s"]}, arrivals=False)
    body = yaml.safe_load(skipped.read_text())
    body["target"] = {"dialect": "app_shop:AppShop"}
    skipped.write_text(yaml.safe_dump(body))
    proc = peakload("run", "--profile", str(skipped), "--results", str(own / "b"), "--quiet")
    assert proc.returncode == 3, proc.stdout + proc.stderr[-2000:]
    run_dir = only_dir(own / "b")
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "unjudged" and s["decided_by"] == "nothing-judged"
    assert [t["passed"] for t in s["thresholds"]] == [None, None]
    gate = peakload("gate", str(run_dir))
    assert gate.returncode == 3 and "PASSED" not in gate.stdout


@pytest.mark.parametrize(
    ("profile", "extra"),
    [
        ("json_shop.yaml", []),
        ("json_shop_arrivals.yaml", ["--workers", "2"]),
        ("app_dialect/profile.yaml", []),
        ("app_dialect/profile_arrivals.yaml", []),
    ],
)
def test_examples_run_under_peakload(profile: str, extra: list[str], tmp_path: Path) -> None:
    proc = peakload("run", "--profile", str(EXAMPLES / profile), *extra, "--results", str(tmp_path), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    s = json.loads((only_dir(tmp_path) / "summary.json").read_text())
    assert s["status"] == "passed" and s["total"]["requests"] > 0 and s["total"]["failures"] == 0
    assert s["reconciliation"]["orders_created"] > 0  # the run header reached the shop: its orders are this run's
    if "arrivals" in profile:
        assert s["latency_basis"] == "intended-start" and s["arrivals"]["scheduled"] > 0
    if "app_dialect" in profile:
        assert "search" in s["not_offered"] and not any(r.get("step") == "search" for r in s["requests"].values())


BAD_FILES = {
    "syntax.py": ("def broken(:\n", "SyntaxError"),
    "no_users.py": ("X = 1\n", "no Locust user class"),
    "boom.py": ("raise RuntimeError('no config')\n", "RuntimeError: no config (line 1)"),
    "shape.py": (
        "from locust import FastHttpUser, LoadTestShape, task\n"
        "class U(FastHttpUser):\n    @task\n    def t(self):\n        pass\n"
        "class MyShape(LoadTestShape):\n    def tick(self):\n        return None\n",
        "defines its own LoadTestShape MyShape",
    ),
    "no_journey.py": (
        "from locust import FastHttpUser, task\nclass Plain(FastHttpUser):\n    @task\n    def t(self):\n        pass\n",
        "class Plain has no journey for the open model",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_locustfile_is_one_line_exit_2_and_nothing_written(name: str, tmp_path: Path) -> None:
    text, expected = BAD_FILES[name]
    (tmp_path / name).write_text(text)
    profile = _profile(tmp_path, "bad", {"all": ["error_ratio < 1%"]}, locustfile=name)
    body = yaml.safe_load(profile.read_text())
    body["locustfile"] = name  # every class of the file
    profile.write_text(yaml.safe_dump(body))
    proc = peakload("run", "--profile", str(profile), "--results", str(tmp_path / "results"), "--quiet", timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and name in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("missing.py", "no such file"),
        ("notes.txt", "expected a Python file ending in .py"),
    ],
)
def test_bad_locustfile_flag(flag: str, expected: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    profile = _profile(tmp_path, "flag", {"all": ["error_ratio < 1%"]}, arrivals=False)
    proc = peakload("run", "--profile", str(profile), "--locustfile", str(tmp_path / flag), "--results", str(tmp_path / "r"), "--quiet")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "--locustfile" in proc.stderr and expected in proc.stderr


def test_profile_picks_a_class_the_file_lacks(own: Path) -> None:
    profile = _profile(own, "lacks", {"all": ["error_ratio < 1%"]})
    body = yaml.safe_load(profile.read_text())
    body["locustfile"]["classes"] = ["Visitor", "Nobody"]
    profile.write_text(yaml.safe_dump(body))
    proc = peakload("run", "--profile", str(profile), "--results", str(own / "r"), "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert "locustfile.classes" in proc.stderr and "'Nobody'" in proc.stderr and "Idle, Visitor" in proc.stderr


def test_capacity_with_own_locustfile(tmp_path: Path) -> None:
    """`peakload capacity --locustfile`: the stepped arrivals drive the user's @journey method."""
    body = {
        "version": "peakload/v1",
        "name": "own-capacity",
        "seed": 5,
        "slo": None,
        "arrivals": {"kind": "constant", "stages": [{"duration": "4s", "rate": 4}], "pool": 40},
        "capacity": {"start_rate": 4, "factor": 2, "step": "4s", "max_steps": 2, "stop_on_drop": True},
        "thresholds": {"all": ["error_ratio < 1%", "p95 < 5s"]},
    }
    profile = tmp_path / "own-capacity.yaml"
    profile.write_text(yaml.safe_dump(body))
    lf = EXAMPLES / "json_shop_locustfile.py"
    proc = peakload("capacity", "--profile", str(profile), "--locustfile", str(lf), "--results", str(tmp_path / "r"), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    run_dir = only_dir(tmp_path / "r")
    s = json.loads((run_dir / "summary.json").read_text())
    assert "POST /api/orders" in s["requests"] and s["latency_basis"] == "intended-start"
    assert [st["rate"] for st in s["capacity"]["steps"]] == [4, 8]
    assert (run_dir / "locustfile" / "json_shop_locustfile.py").exists()
