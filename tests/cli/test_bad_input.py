"""A hostile new user's campaign against the CLI: every case exits 2 with one line naming the input, and writes nothing.

Each case is a file, flag or folder a user could really hand peakload; the
assertion is the README's contract (exit codes table), checked through
`peakload.cli.main` as the console script calls it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import VALID_PROFILE, assert_refused, tree

REPO = Path(__file__).resolve().parents[2]
STEADY = "shape: {stages: [{kind: steady, duration: 1s, users: 1}]}\n"
HEAD = "version: peakload/v1\nname: probe\nslo: null\n"


def _nested(depth: int) -> str:
    return HEAD + STEADY + "description: " + "[" * depth + "]" * depth + "\n"


def _laughs() -> str:
    text = HEAD + STEADY + 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, 9):
        text += f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]\n"
    return text


# (case id, profile bytes, a word the one-line error must contain)
PROFILE_FILES: list[tuple[str, bytes, str]] = [
    ("utf16", VALID_PROFILE.encode("utf-16"), "UTF-16"),
    ("utf16-be-no-bom", VALID_PROFILE.encode("utf-16-be"), "NUL"),
    ("utf32", VALID_PROFILE.encode("utf-32"), "UTF-32"),
    ("latin1", (VALID_PROFILE + "description: café\n").encode("latin-1"), "UTF-8"),
    ("binary", bytes(range(256)) * 4, "binary"),
    ("png-header", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "binary"),
    ("empty", b"", "expected a mapping"),
    ("only-comment", b"# nothing here\n", "expected a mapping"),
    ("a-list", b"- version: peakload/v1\n", "expected a mapping"),
    ("scalar", b"hello\n", "expected a mapping"),
    ("no-version", b"name: x\n", "version"),
    ("version-list", b"version: [1, 2]\n", "version"),
    ("bad-yaml", b"version: peakload/v1\nname: [unclosed\n", "invalid YAML"),
    ("tab-indent", b"version: peakload/v1\nshape:\n\tstages: []\n", "invalid YAML"),
    ("bad-date", HEAD.encode() + STEADY.encode() + b"description: 2026-13-45\n", "invalid YAML value"),
    ("unhashable-key", b"version: peakload/v1\n? [a, b]\n: 1\n", "invalid YAML"),
    ("deep-nesting", _nested(20_000).encode(), "nested"),
    ("nesting-40", _nested(40).encode(), "nested"),
    ("billion-laughs", _laughs().encode(), "values"),
    ("huge", HEAD.encode() + STEADY.encode() + b"#" + b"x" * (2 << 20) + b"\n", "bytes"),
    ("control-chars", HEAD.encode() + b"description: \x07bell\n" + STEADY.encode(), "invalid YAML"),
    ("inf-duration", HEAD.encode() + b"shape: {stages: [{kind: steady, duration: .inf, users: 1}]}\n", "shape.stages[0].duration"),
    ("nan-users", HEAD.encode() + b"shape: {stages: [{kind: steady, duration: 1s, users: .nan}]}\n", "shape.stages[0].users"),
    ("huge-users", HEAD.encode() + b"shape: {stages: [{kind: steady, duration: 1s, users: 99999999999999999999}]}\n", "users"),
    ("negative-users", HEAD.encode() + b"shape: {stages: [{kind: steady, duration: 1s, users: -5}]}\n", "users"),
    ("duration-digits", HEAD.encode() + b"shape: {stages: [{kind: steady, duration: 9999999999999999999999d, users: 1}]}\n", "duration"),
    ("duration-year", HEAD.encode() + b"shape: {stages: [{kind: steady, duration: 400d, users: 1}]}\n", "duration"),
    ("inf-weight", HEAD.encode() + STEADY.encode() + b"users: {shopper: .inf}\n", "users.shopper"),
    ("nan-think", HEAD.encode() + STEADY.encode() + b"journey: {think_time: {min: .nan, max: 1}}\n", "journey.think_time.min"),
    ("zipf-huge", HEAD.encode() + STEADY.encode() + b"journey: {zipf_exponent: 1e308}\n", "zipf_exponent"),
    ("ratio-over-1", HEAD.encode() + STEADY.encode() + b"journey: {ratios: {coupon: 1.5}}\n", "journey.ratios.coupon"),
    ("ratio-in-ms", HEAD.encode() + STEADY.encode() + b'thresholds: {all: ["error_ratio < 0.5ms"]}\n', "ratio"),
    ("negative-latency", HEAD.encode() + STEADY.encode() + b'thresholds: {all: ["p95 < -5ms"]}\n', "negative"),
    ("latency-no-unit", HEAD.encode() + STEADY.encode() + b'thresholds: {all: ["p95 < 300"]}\n', "unit"),
    ("latency-over-1h", HEAD.encode() + STEADY.encode() + b'thresholds: {all: ["p95 < 2h"]}\n', "thresholds"),
    ("p100", HEAD.encode() + STEADY.encode() + b'thresholds: {all: ["p100 < 1s"]}\n', "percentile"),
    ("count-with-unit", HEAD.encode() + STEADY.encode() + b'thresholds: {business: ["oversold == 0ms"]}\n', "plain number"),
    ("unknown-metric", HEAD.encode() + STEADY.encode() + b'thresholds: {all: ["latency < 1s"]}\n', "unknown metric"),
    ("threshold-not-list", HEAD.encode() + STEADY.encode() + b"thresholds: {all: 5}\n", "thresholds"),
    ("grace-inf", HEAD.encode() + STEADY.encode() + b'thresholds: {all: [{expr: "p99 < 2s", abort: true, grace: .inf}]}\n', "grace"),
    (
        "capacity-overflow",
        HEAD.encode() + b"arrivals: {stages: [{duration: 1s, rate: 1}]}\ncapacity: {start_rate: 1e300, factor: 99, max_steps: 100}\n",
        "capacity",
    ),
    (
        "capacity-rates",
        HEAD.encode() + b"arrivals: {stages: [{duration: 1s, rate: 1}]}\ncapacity: {start_rate: 10, factor: 50, max_steps: 20}\n",
        "capacity",
    ),
    ("rate-inf", HEAD.encode() + b"arrivals: {stages: [{duration: 1s, rate: .inf}]}\n", "arrivals.stages[0].rate"),
    ("url-port-range", HEAD.encode() + STEADY.encode() + b'target: {url: "http://127.0.0.1:65536"}\n', "target.url"),
    ("url-port-zero", HEAD.encode() + STEADY.encode() + b'target: {url: "http://127.0.0.1:0"}\n', "target.url"),
    ("url-word", HEAD.encode() + STEADY.encode() + b"target: {url: shop}\n", "target.url"),
    ("url-space", HEAD.encode() + STEADY.encode() + b'target: {url: "http://127.0.0.1:80 /"}\n', "target.url"),
    ("url-query", HEAD.encode() + STEADY.encode() + b'target: {url: "http://127.0.0.1:8080/?x=1"}\n', "target.url"),
    ("url-ftp", HEAD.encode() + STEADY.encode() + b'target: {url: "ftp://127.0.0.1/"}\n', "target.url"),
    ("allow-url", HEAD.encode() + STEADY.encode() + b'target: {allow: ["https://shop.example"]}\n', "target.allow"),
    ("sku-format", HEAD.encode() + STEADY.encode() + b'target: {sku_format: "SKU-{x}"}\n', "target.sku_format"),
    ("sku-format-broken", HEAD.encode() + STEADY.encode() + b'target: {sku_format: "SKU-{n"}\n', "target.sku_format"),
    ("run-header", HEAD.encode() + STEADY.encode() + b'target: {run_header: "X Run"}\n', "target.run_header"),
    ("path-space", HEAD.encode() + STEADY.encode() + b'target: {paths: {home: "/api/ho me"}}\n', "target.paths"),
    ("slo-empty", b"version: peakload/v1\nname: probe\nslo: ''\n" + STEADY.encode(), "slo"),
    ("slo-missing", b"version: peakload/v1\nname: probe\nslo: nope.yaml\n" + STEADY.encode(), "nope.yaml"),
    ("slo-is-folder", b"version: peakload/v1\nname: probe\nslo: .\n" + STEADY.encode(), "folder"),
    ("seed-negative", HEAD.encode() + STEADY.encode() + b"seed: -1\n", "seed"),
    ("gateway-rate", HEAD.encode() + STEADY.encode() + b"embedded: {gateway_failure_rate: .nan}\n", "embedded.gateway_failure_rate"),
    ("inject-inf", HEAD.encode() + STEADY.encode() + b'embedded: {inject_latency: {"/api/home": .inf}}\n', "inject_latency"),
]


@pytest.mark.parametrize(("case", "content", "word"), PROFILE_FILES, ids=[c[0] for c in PROFILE_FILES])
def test_bad_profile_file_is_refused_with_one_line(cli, tmp_path: Path, case: str, content: bytes, word: str) -> None:
    profile = tmp_path / f"{case}.yaml"
    profile.write_bytes(content)
    results = tmp_path / "results"
    outcome = cli("run", "--profile", profile, "--results", results, "--quiet")
    assert_refused(outcome, names=word, watched=[results, tmp_path / "cwd"])
    assert profile.name in outcome.err  # the file is named too


def test_bad_slo_spec_is_refused_with_one_line(cli, tmp_path: Path) -> None:
    cases = {
        "utf16": "version: peakload/v1\nslos: []\n".encode("utf-16"),
        "objective-inf": b"version: peakload/v1\nslos: [{name: a, kind: availability, requests: ['GET /x'], objective: .inf}]\n",
        "threshold-inf": b"version: peakload/v1\nslos: [{name: a, kind: latency, requests: ['GET /x'], objective: 99, threshold: .inf}]\n",
        "threshold-over-1h": b"version: peakload/v1\nslos: [{name: a, kind: latency, requests: ['GET /x'], objective: 99, threshold: 2h}]\n",
        "window-tiny": b"version: peakload/v1\nwindow: 1s\nslos: [{name: a, kind: availability, requests: ['GET /x'], objective: 99}]\n",
        "deep": b"version: peakload/v1\nslos: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    }
    for case, content in cases.items():
        spec = tmp_path / f"slo-{case}.yaml"
        spec.write_bytes(content)
        out = tmp_path / f"out-{case}"
        for command in (["slo", "rules"], ["dashboards", "build"]):
            outcome = cli(*command, "--spec", spec, "--out", out)
            assert_refused(outcome, names=spec.name, watched=[out, tmp_path / "cwd"])
        profile = tmp_path / f"p-{case}.yaml"
        profile.write_text(f"version: peakload/v1\nname: probe\nslo: {spec.name}\n{STEADY}")
        assert_refused(cli("run", "--profile", profile, "--results", tmp_path / "r", "--quiet"), names=spec.name, watched=[tmp_path / "r"])


def _profile(tmp_path: Path) -> Path:
    p = tmp_path / "ok.yaml"
    p.write_text(VALID_PROFILE)
    return p


FLAGS: list[tuple[list[str], str]] = [
    (["--target", "shop"], "--target"),
    (["--target", "http://127.0.0.1:99999"], "--target"),
    (["--target", "http://127.0.0.1:65536"], "--target"),  # must never wrap around to port 0
    (["--target", "http://127.0.0.1:0"], "--target"),
    (["--target", "http://127.0.0.1:80x"], "--target"),
    (["--target", "http://127.0.0.1:"], "--target"),
    (["--target", "http://[::1"], "--target"),
    (["--target", "http://"], "--target"),
    (["--target", "127.0.0.1:8080"], "--target"),
    (["--target", "http://127.0.0.1:8080/#frag"], "--target"),
    (["--target", "http://exa mple.com"], "--target"),
    (["--target", "http://shop.example"], "refusing"),
    (["--allow-target", "http://shop.example"], "--allow-target"),
    (["--allow-target", "-bad-.example"], "--allow-target"),
    (["--users", "0"], "--users"),
    (["--users", "-3"], "--users"),
    (["--users", "1e9"], "--users"),
    (["--users", "99999999999999999999"], "--users"),
    (["--scale", "inf"], "--scale"),
    (["--scale", "nan"], "--scale"),
    (["--scale", "-1"], "--scale"),
    (["--scale", "0"], "--scale"),
    (["--scale", "1e400"], "--scale"),
    (["--scale", "abc"], "--scale"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "1.5"], "--seed"),
    (["--workers", "-1"], "--workers"),
    (["--workers", "100000"], "--workers"),
    (["--metrics-port", "65536"], "--metrics-port"),
    (["--metrics-port", "-1"], "--metrics-port"),
    (["--duration", "inf"], "--duration"),
    (["--duration", "0s"], "--duration"),
    (["--duration", "-5s"], "--duration"),
    (["--duration", "99999999999999999999999d"], "--duration"),
    (["--duration", "5 parsecs"], "--duration"),
    (["--users", "5", "--scale", "2"], "--scale"),
]


@pytest.mark.parametrize(("flags", "word"), FLAGS, ids=[" ".join(f) for f, _ in FLAGS])
def test_bad_run_flag_is_refused_before_anything_happens(cli, tmp_path: Path, flags: list[str], word: str) -> None:
    results = tmp_path / "results"
    outcome = cli("run", "--profile", _profile(tmp_path), "--results", results, "--quiet", *flags)
    assert_refused(outcome, names=word, watched=[results, tmp_path / "cwd"])


def test_bad_paths_are_refused(cli, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    long_name = "p" * 300 + ".yaml"
    deep = "/".join(["d" * 200] * 25)
    cases = [
        (["run", "--profile", tmp_path / "missing.yaml"], "file not found"),
        (["run", "--profile", tmp_path], "folder"),
        (["run", "--profile", "/dev/zero"], "regular file"),
        (["run", "--profile", long_name], "255"),
        (["run", "--profile", deep], "4095"),
        (["run", "--profile", a_file / "profile.yaml"], "a parent in the path is a file"),
        (["run", "--profile", _profile(tmp_path), "--results", ""], "--results"),
        (["run", "--profile", _profile(tmp_path), "--results", a_file], "--results"),
        (["run", "--profile", _profile(tmp_path), "--results", a_file / "sub"], "--results"),
        (["run", "--profile", _profile(tmp_path), "--results", long_name], "--results"),
        (["slo", "rules", "--out", ""], "--out"),
        (["slo", "rules", "--out", "  "], "--out"),
        (["slo", "rules", "--out", a_file], "--out"),
        (["dashboards", "build", "--out", ""], "--out"),
        (["dashboards", "build", "--out", a_file / "x"], "--out"),
        (["dashboards", "push", "--url", "grafana"], "--url"),
        (["dashboards", "push", "--url", "http://127.0.0.1:70000"], "--url"),
        (["dashboards", "push", "--url", "http://127.0.0.1:3000", "--dir", tmp_path / "no-such-dir"], "--dir"),
        (["dashboards", "push", "--url", "http://127.0.0.1:3000", "--dir", a_file], "--dir"),
        (["drill", "backup", "--state-dir", a_file], "--state-dir"),
        (["drill", "backup", "--results", ""], "--results"),
        (["platform", "status", "--state-dir", a_file], "--state-dir"),
        (["platform", "up", "--replicas", "0"], "--replicas"),
        (["platform", "up", "--replicas", "1e3"], "--replicas"),
        (["drill", "backup", "--max-rpo", "inf"], "--max-rpo"),
        (["chaos", "run", "replica-kill", "--state-dir", a_file], "--state-dir"),
    ]
    for args, word in cases:
        before = tree(tmp_path)
        assert_refused(cli(*args), names=word, watched=[tmp_path / "cwd"])
        assert tree(tmp_path) == before, args


def _results_folder(tmp_path: Path, name: str = "run") -> Path:
    from reports.synthetic import write_synthetic_run

    d = tmp_path / name
    write_synthetic_run(d, names=2, seconds=10)
    return d


def test_report_and_gate_refuse_folders_that_are_not_results(cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    unrelated = tmp_path / "photos"
    unrelated.mkdir()
    (unrelated / "cat.jpg").write_bytes(b"\xff\xd8\xff")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for folder in (empty, unrelated, a_file, tmp_path / "missing"):
        before = tree(tmp_path)
        for command in ("report", "gate"):
            assert_refused(cli(command, folder), names="not a results folder", watched=[])
        word = "not a results folder" if folder.is_dir() else "summary.json"  # compare also takes a summary.json file
        assert_refused(cli("compare", folder, _results_folder(tmp_path, "base")), names=word, watched=[])
        assert tree(tmp_path) - before <= {str(p.relative_to(tmp_path)) for p in (tmp_path / "base").rglob("*")} | {"base"}


def test_bad_baseline_is_refused_before_the_run(cli, tmp_path: Path) -> None:
    results = tmp_path / "results"
    bad = {
        "garbage.json": b"{not json",
        "utf16.json": json.dumps({"schema": "peakload/summary/v1", "requests": {}}).encode("utf-16"),
        "list.json": b"[1, 2]",
        "other.json": json.dumps({"requests": {}}).encode(),
        "nan.json": b'{"schema": "peakload/summary/v1", "requests": {}, "x": NaN}',
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
    }
    for name, content in bad.items():
        path = tmp_path / name
        path.write_bytes(content)
        outcome = cli("run", "--profile", _profile(tmp_path), "--results", results, "--quiet", "--baseline", path)
        assert_refused(outcome, names=name, watched=[results])
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    assert_refused(
        cli("run", "--profile", _profile(tmp_path), "--results", results, "--quiet", "--baseline", empty),
        names="summary.json",
        watched=[results],
    )


def test_the_console_script_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    """The same contract through the installed entry point, as a shell sees it."""
    bad = tmp_path / "u16.yaml"
    bad.write_bytes(VALID_PROFILE.encode("utf-16"))
    for args in (["run", "--profile", str(bad)], ["run", "--target", "http://127.0.0.1:65536"], ["gate", str(tmp_path)]):
        proc = subprocess.run(
            [sys.executable, "-m", "peakload", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        )
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["u16.yaml"]
