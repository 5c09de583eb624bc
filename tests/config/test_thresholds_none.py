"""``thresholds: none``: the deliberate opt-out from judging, and the one-line errors around it."""

from __future__ import annotations

from pathlib import Path

import pytest

from peakload.core import ConfigError, load_profile

BASE = "version: peakload/v1\nname: p\nshape: {stages: [{kind: steady, duration: 1s, users: 1}]}\n"


def _load(tmp_path: Path, extra: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "p.yaml"
    path.write_text(BASE + extra)
    return load_profile(path)


def _error(tmp_path: Path, extra: str) -> str:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, extra)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{tmp_path / 'p.yaml'}: ")
    return text.split(": ", 1)[1]


def test_thresholds_none_means_no_thresholds_and_no_slo_spec(tmp_path: Path) -> None:
    for extra in ("thresholds: none\n", "thresholds: none\nslo: null\n"):
        profile = _load(tmp_path, extra)
        assert profile.thresholds == "none" and profile.profile_thresholds() == []
        assert profile.slo is None and profile.slo_path() is None  # the default slo.yaml would judge it after all
    default = _load(tmp_path, "")  # without thresholds: the default SLO spec, as before
    assert default.slo == "slo.yaml" and default.thresholds == {}


def test_thresholds_none_with_an_slo_spec_is_refused(tmp_path: Path) -> None:
    assert (
        _error(tmp_path, "thresholds: none\nslo: slo.yaml\n")
        == "thresholds: none: the profile also names an slo spec (slo: slo.yaml); drop one"
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("None", "'None'"),
        ("nothing", "'nothing'"),
        ("off", "False"),
        ("'[p95 < 1s]'", "'[p95 < 1s]'"),
        ("[p95 < 1s]", "['p95 < 1s']"),
        ("", "None"),
    ],
)
def test_any_other_thresholds_value_names_the_field_and_what_is_expected(tmp_path: Path, value: str, shown: str) -> None:
    assert _error(tmp_path, f"thresholds: {value}\n") == (
        f"thresholds: expected a mapping of scope to thresholds (all: [p95 < 500ms]) or none (no thresholds by design), got {shown}"
    )


def test_the_mapping_form_reads_and_fails_as_before(tmp_path: Path) -> None:
    profile = _load(tmp_path, "thresholds: {all: [p95 < 1s, {expr: error_ratio < 1%, abort: true}]}\n")
    assert [(t.metric, t.abort) for t in profile.profile_thresholds()] == [("p95", False), ("error_ratio", True)]
    assert _error(tmp_path, "thresholds: {all: 5}\n") == "thresholds.all: Input should be a valid list, got 5"
    assert _error(tmp_path, "thresholds: {all: [latency < 1s]}\n").startswith("thresholds: ['all'][0]: ")
