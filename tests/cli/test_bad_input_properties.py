"""Property-based: generated invalid profiles, SLO specs and results files never escape the contract.

- a profile with one field replaced by a hostile value: exit 2 with one line naming the file (or, if the
  value happened to be valid, exit 3 at the pre-flight of a closed loopback port) — never a traceback,
  never a results folder;
- an SLO spec likewise: exit 2 and nothing written, or exit 0 with the rules written;
- a results folder with generated lines and wrongly typed fields: `report` exits 0, `gate` 0/1/3 and
  `compare` 0/1/2/3, every unreadable line is listed in `problems`, and summary.json still validates.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli.conftest import tree

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "reports" / "summary.schema.json").read_text())
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

BASE_PROFILE: dict[str, Any] = {
    "version": "peakload/v1",
    "name": "probe",
    "slo": None,
    "seed": 1,
    "shape": {
        "stages": [
            {"name": "a", "kind": "ramp", "duration": "1s", "users": 2},
            {"kind": "spike", "duration": "1s", "users": 3, "rise": "500ms"},
        ]
    },
    "users": {"shopper": 9, "flash_buyer": 1},
    "journey": {
        "think_time": {"min": 0.1, "max": 0.2},
        "session_actions": {"min": 1, "max": 2},
        "zipf_exponent": 1.1,
        "ratios": {"search": 0.3, "view_to_cart": 0.3, "coupon": 0.2},
    },
    "flash_sale": {"sku": "FLASH-0001", "at": "1s", "quantity": 1, "retries": 2},
    "embedded": {"skus": 1000, "gateway_latency_ms": 5, "inject_latency": {"/api/home": "10ms"}},
    "target": {"run_header": "X-Peakload-Run", "sku_format": "SKU-{n:06d}", "paths": {"home": "/api/home"}},
    "thresholds": {"all": ["error_ratio < 1%", {"expr": "p99 < 2s", "abort": True, "grace": "1s"}], "business": ["oversold == 0"]},
    "compare": {"p95_increase": 0.1, "min_requests": 5},
}
BASE_SLO: dict[str, Any] = {
    "version": "peakload/v1",
    "service": "shop",
    "window": "28d",
    "slos": [
        {"name": "avail", "kind": "availability", "requests": ["GET /api/home"], "objective": 99.5},
        {"name": "lat", "kind": "latency", "requests": ["GET /api/home"], "objective": 99, "threshold": "300ms"},
    ],
}

HOSTILE = st.one_of(
    st.sampled_from(
        [
            float("inf"),
            float("-inf"),
            float("nan"),
            -1,
            0,
            10**30,
            -(10**30),
            1e308,
            "",
            " ",
            "∞",
            "1e999s",
            "-5ms",
            "p95 < -1ms",
            "error_ratio < 5ms",
            "http://127.0.0.1:65536",
            "SKU-{x}",
            None,
            True,
            [],
            {},
            "9" * 400,
            "\x00",
            "🛒" * 50,
            ".inf",
            "NaN",
            "2026-13-45",
        ]
    ),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the with-block ends: connections are refused


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@SETTINGS
@given(data=st.data())
def test_mutated_profiles_exit_2_with_one_line_or_reach_the_preflight(cli, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_paths(BASE_PROFILE)), label="field")
    value = data.draw(HOSTILE, label="value")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        profile = folder / "profile.yaml"
        try:
            profile.write_text(_dump(_mutate(BASE_PROFILE, path, value)), encoding="utf-8")
        except UnicodeEncodeError:  # lone surrogates cannot even be written as UTF-8: write them raw
            profile.write_bytes(_dump(_mutate(BASE_PROFILE, path, value)).encode("utf-8", "surrogatepass"))
        results = folder / "results"
        outcome = cli("run", "--profile", profile, "--results", results, "--quiet", "--target", f"http://127.0.0.1:{_closed_port()}")
        assert outcome.code in (2, 3), outcome
        assert len(outcome.err_lines) == 1 and "Traceback" not in outcome.err, outcome.err
        if outcome.code == 2:
            assert "profile.yaml" in outcome.err
        else:
            assert "target unreachable" in outcome.err
        assert tree(results) == set()


@SETTINGS
@given(
    content=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.text(max_size=100).map(lambda t: ("version: peakload/v1\n" + t).encode("utf-16")),
    )
)
def test_arbitrary_bytes_as_a_profile_exit_2(cli, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "bytes.yaml"
        profile.write_bytes(content)
        outcome = cli("run", "--profile", profile, "--results", Path(tmp) / "results", "--quiet")
        assert outcome.code == 2, outcome
        assert len(outcome.err_lines) == 1 and "bytes.yaml" in outcome.err and "Traceback" not in outcome.err
        assert not (Path(tmp) / "results").exists()


@SETTINGS
@given(data=st.data())
def test_mutated_slo_specs_exit_2_and_write_nothing(cli, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_paths(BASE_SLO)), label="field")
    value = data.draw(HOSTILE, label="value")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "slo.yaml"
        spec.write_bytes(_dump(_mutate(BASE_SLO, path, value)).encode("utf-8", "surrogatepass"))
        out = Path(tmp) / "out"
        outcome = cli("slo", "rules", "--spec", spec, "--out", out)
        assert outcome.code in (0, 2), outcome
        assert "Traceback" not in outcome.err
        if outcome.code == 2:
            assert len(outcome.err_lines) == 1 and "slo.yaml" in outcome.err
            assert not out.exists()
        else:
            assert (out / "peakload-slo-rules.yaml").exists() or any(out.iterdir())


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)),
    max_leaves=8,
)
FIELDS = ["seq", "t_start", "t_end", "users", "workers", "requests", "business", "arrivals", "target_rate", "cpu_warning"]
ROW_FIELDS = ["name", "method", "count", "failures", "sum_s", "status", "errors", "hdr"]


def _synthetic(folder: Path) -> list[dict[str, Any]]:
    from reports.synthetic import write_synthetic_run

    write_synthetic_run(folder, names=2, seconds=8, rps_per_name=5)
    (folder / "profile.yaml").write_text(
        _dump(
            {
                "version": "peakload/v1",
                "name": "probe",
                "slo": None,
                "shape": {"stages": [{"kind": "steady", "duration": "8s", "users": 1}]},
                "thresholds": {"all": ["error_ratio < 50%"], "business": ["oversold == 0"]},
            }
        )
    )
    return [json.loads(ln) for ln in (folder / "snapshots.jsonl").read_text().splitlines()]


@SETTINGS
@given(data=st.data())
def test_results_with_generated_lines_and_wrong_types_still_report(cli, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        lines = _synthetic(run)
        out_lines = [json.dumps(x) for x in lines]
        for _ in range(data.draw(st.integers(1, 4), label="edits")):
            how = data.draw(st.sampled_from(["field", "row", "junk", "bytes"]), label="how")
            i = data.draw(st.integers(1, len(lines) - 2), label="line")
            try:
                obj = json.loads(out_lines[i])
            except ValueError:
                obj = None  # an earlier edit already spoiled this line
            obj = obj if isinstance(obj, dict) else None
            if how == "field" and obj is not None:
                obj[data.draw(st.sampled_from(FIELDS))] = data.draw(JSON_VALUES)
                out_lines[i] = json.dumps(obj)
            elif how == "row" and obj is not None and isinstance(obj.get("requests"), list) and obj["requests"]:
                row = obj["requests"][0]
                if isinstance(row, dict):
                    row[data.draw(st.sampled_from(ROW_FIELDS))] = data.draw(JSON_VALUES)
                out_lines[i] = json.dumps(obj)
            elif how == "junk":
                out_lines[i] = json.dumps(data.draw(JSON_VALUES))
            else:
                out_lines[i] = data.draw(st.binary(max_size=40)).replace(b"\n", b"").decode("latin-1")
        (run / "snapshots.jsonl").write_bytes("\n".join(out_lines).encode("utf-8", "surrogatepass") + b"\n")
        for name in ("run.json", "outcome.json", "reconciliation.json", "capacity.json", "events.jsonl"):
            if data.draw(st.booleans(), label=f"spoil {name}"):
                doc = data.draw(
                    st.dictionaries(
                        st.sampled_from(
                            [
                                "run_id",
                                "started_ts",
                                "workers",
                                "invalid",
                                "aborted",
                                "cpu_warning",
                                "oversold_units",
                                "duplicate_orders",
                                "exit_code",
                                "verdict",
                                "steps",
                                "t",
                                "kind",
                                "error",
                            ]
                        ),
                        JSON_VALUES,
                        max_size=4,
                    )
                )
                (run / name).write_text(json.dumps(doc) if data.draw(st.booleans()) else json.dumps(data.draw(JSON_VALUES)))
        report = cli("report", run)
        assert report.code == 0 and "Traceback" not in report.err, report
        summary = json.loads((run / "summary.json").read_text())
        jsonschema.validate(summary, SCHEMA)
        assert summary["decided_by"] in SCHEMA["properties"]["decided_by"]["enum"]
        assert cli("gate", run).code in (0, 1, 3)
        base = Path(tmp) / "base"
        _synthetic(base)
        assert cli("report", base).code == 0
        assert cli("compare", run, base).code in (0, 1, 3)


def test_every_spoiled_line_is_listed_as_a_problem(tmp_path: Path, cli) -> None:
    """Not only 'no crash': a line that cannot be read is named, and its figures are not counted."""
    run = tmp_path / "run"
    lines = _synthetic(run)
    spoiled = [
        dict(lines[2], t_start="yesterday"),
        dict(lines[3], t_end=float("nan")),
        dict(lines[4], requests=[{"name": "/x", "method": "GET", "count": -5}]),
        [1, 2, 3],
    ]
    text = [json.dumps(x) for x in lines[:2]] + [json.dumps(x) for x in spoiled] + [json.dumps(x) for x in lines[5:]]
    (run / "snapshots.jsonl").write_text("\n".join(text) + "\n")
    assert cli("report", run).code == 0
    summary = json.loads((run / "summary.json").read_text())
    problems = "\n".join(summary["problems"])
    # NaN is not JSON: the whole line is corrupt (strict parse), not a number to be judged
    assert "t_start" in problems and "line 4: not valid JSON" in problems and "count" in problems and "expected a JSON object" in problems
    good = [x for x in lines if "t_start" in x]
    # lines 2 and 3 have unusable times: skipped; line 4 keeps its interval but its only (bad) row is dropped
    expected = sum(r["count"] for x in good for r in x["requests"]) - sum(r["count"] for x in lines[2:5] for r in x["requests"])
    assert summary["intervals"] == len(good) - 2
    assert summary["total"]["requests"] == expected
    shutil.rmtree(run)
