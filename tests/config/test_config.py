"""Profile and SLO spec validation: one line naming file, field path and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from peakload.core import (
    ConfigError,
    check_scope,
    load_profile,
    load_slo_spec,
    parse_duration,
    parse_threshold,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text, seconds", [("250ms", 0.25), ("1m30s", 90), ("2h", 7200), ("30d", 2592000), (45, 45.0), ("1.5s", 1.5)])
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5x", "-3s", True, "m"])
def test_bad_durations(bad) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_threshold_units_are_normalised() -> None:
    assert parse_threshold("all", "p95 < 300ms").value == pytest.approx(0.3)
    assert parse_threshold("all", "p99.9 <= 2s").metric == "p99.9"
    assert parse_threshold("all", "error_ratio < 1%").value == pytest.approx(0.01)
    assert parse_threshold("business", "oversold == 0").op == "=="
    for bad, msg in [
        ("p95 < 300", "needs a unit"),
        ("error_ratio < 150%", "within 0..1"),
        ("p100 < 1s", "between 0 and 100"),
        ("latency < 1s", "unknown metric"),
        ("p95 300ms", "expected '<metric> <op> <value>'"),
        ("rps > 5%", "plain number"),
    ]:
        with pytest.raises(ValueError, match=msg):
            parse_threshold("all", bad)


def test_every_shipped_profile_validates() -> None:
    for path in sorted((REPO / "profiles").glob("*.yaml")):
        if path.name == "slo.yaml":
            spec = load_slo_spec(path)
            assert spec.latency_thresholds() == [0.3, 2.0]
        else:
            assert load_profile(path).name == path.stem


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


BASE = "version: peakload/v1\nname: t\nshape: {stages: [{kind: steady, duration: 5s, users: 1}]}\n"


@pytest.mark.parametrize(
    "extra, message",
    [
        ("users: {shopper: -1}\n", "users.shopper: Input should be greater than or equal to 0"),
        ("users: {robot: 1}\n", "users.robot"),
        ("journey: {think_time: {min: 2, max: 1}}\n", "journey.think_time: max (1.0) must be >= min (2.0)"),
        ("journey: {ratios: {view_to_cart: 1.5}}\n", "journey.ratios.view_to_cart: Input should be less than or equal to 1"),
        ("target: {paths: {basket: /b}}\n", "target.paths: unknown path key 'basket'"),
        ("users: {flash_buyer: 1}\n", "users.flash_buyer > 0 needs a flash_sale section"),
        ("surprise: 1\n", "surprise: Extra inputs are not permitted"),
    ],
)
def test_profile_errors_name_the_field(tmp_path: Path, extra: str, message: str) -> None:
    p = _write(tmp_path, BASE + extra)
    with pytest.raises(ConfigError) as exc:
        load_profile(p)
    text = str(exc.value)
    assert text.startswith(f"{p}: ") and message in text and "\n" not in text, text


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_profile(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_profile(_write(tmp_path, "- a\n- b\n"))


SLO = """version: peakload/v1
slos:
  - {name: ok, kind: availability, requests: ["GET /api/home"], objective: 99.9}
  - {name: checkout-latency, kind: latency, requests: ["POST /api/orders"], objective: %s %s}
"""


@pytest.mark.parametrize(
    "objective, extra, message",
    [
        ("100.5", ", threshold: 1s", 'SLO "checkout-latency": objective: Input should be less than 100'),
        ("99", "", 'SLO "checkout-latency": (slo): a latency SLO needs threshold'),
    ],
)
def test_slo_errors_name_the_slo_and_field(tmp_path: Path, objective: str, extra: str, message: str) -> None:
    p = tmp_path / "slo.yaml"
    p.write_text(SLO % (objective, extra))
    with pytest.raises(ConfigError) as exc:
        load_slo_spec(p)
    assert message in str(exc.value), str(exc.value)


def test_slo_becomes_gate_thresholds() -> None:
    spec = load_slo_spec(REPO / "profiles" / "slo.yaml")
    ids = [t.id for t in spec.gate_thresholds()]
    # the SLOs name journey steps: the gate judges by step on any platform; routes stay server-side
    assert "step:product: p99 <= 300ms" in ids
    assert "step:checkout: error_ratio <= 0.05%" in ids and "step:pay: error_ratio <= 0.05%" in ids
    assert not [i for i in ids if not i.startswith("step:")], ids


@pytest.mark.parametrize(
    "slo, message",
    [
        (
            "{name: s, kind: availability, steps: [chekout], objective: 99.9}",
            "SLO \"s\": steps: unknown journey step 'chekout'; expected one of",
        ),
        ("{name: s, kind: availability, steps: [pay, pay], objective: 99.9}", 'SLO "s": steps: steps must not repeat'),
        ("{name: s, kind: availability, objective: 99.9}", 'SLO "s": (slo): an SLO needs steps (journey steps like checkout) or requests'),
    ],
)
def test_slo_steps_are_journey_steps(tmp_path: Path, slo: str, message: str) -> None:
    p = tmp_path / "slo.yaml"
    p.write_text(f"version: peakload/v1\nslos:\n  - {slo}\n")
    with pytest.raises(ConfigError) as exc:
        load_slo_spec(p)
    assert message in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


def test_an_slo_by_steps_gates_each_step_and_one_by_requests_each_request(tmp_path: Path) -> None:
    p = tmp_path / "slo.yaml"
    p.write_text(
        "version: peakload/v1\nslos:\n"
        "  - {name: both, kind: availability, steps: [checkout, pay], requests: ['POST /api/orders'], objective: 99.9}\n"
        "  - {name: routes, kind: latency, requests: ['GET /api/home'], objective: 99, threshold: 1s}\n"
    )
    assert [(t.scope, t.source) for t in load_slo_spec(p).gate_thresholds()] == [
        ("step:checkout", "slo:both"),
        ("step:pay", "slo:both"),
        ("GET /api/home", "slo:routes"),
    ]


def test_a_threshold_scope_naming_a_step_must_name_a_journey_step(tmp_path: Path) -> None:
    ok = load_profile(_write(tmp_path, BASE + "thresholds: {'step:checkout': [p95 < 2s]}\n"))
    assert [t.scope for t in ok.profile_thresholds()] == ["step:checkout"]
    with pytest.raises(ConfigError) as exc:
        load_profile(_write(tmp_path, BASE + "thresholds: {'step:chekout': [p95 < 2s]}\n"))
    assert "scope 'step:chekout': unknown journey step 'chekout'; expected one of sign_in" in str(exc.value), str(exc.value)
    with pytest.raises(ValueError, match="unknown journey step 'basket'"):
        check_scope("step:basket")
    assert check_scope("GET /api/home") == "GET /api/home"  # request names are judged, not refused
