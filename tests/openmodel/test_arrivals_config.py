"""The ``arrivals`` and ``capacity`` profile sections: validation errors name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from peakload.core import ConfigError, load_profile


def write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text("version: peakload/v1\nname: t\nslo: null\n" + body)
    return p


def test_open_model_profile_loads_with_sub_second_stages_and_a_derived_pool(tmp_path):
    p = load_profile(
        write(
            tmp_path,
            "arrivals:\n  kind: ramping\n  stages:\n    - {duration: 500ms, rate: 400}\n    - {duration: 2s, rate: 400}\n  journey: single_request\n",
        )
    )
    assert p.shape is None and p.total_seconds == 2.5
    assert p.arrivals.curve_kind == "linear" and p.arrivals.peak_rate == 400
    assert p.arrivals.pool_size(p.journey) == 201  # 400/s x 0.25 s x 2 + 1
    assert p.arrivals.pool_size(p.journey, scale=2) == 401


def test_pool_is_capped_by_max_pool(tmp_path):
    p = load_profile(write(tmp_path, "arrivals:\n  stages: [{duration: 10s, rate: 100000}]\n  max_pool: 500\n"))
    assert p.arrivals.pool_size(p.journey) == 500


@pytest.mark.parametrize(
    "body, message",
    [
        ("", "expected a shape (closed model: users) or an arrivals section"),
        (
            "shape: {stages: [{kind: steady, duration: 1s, users: 1}]}\narrivals: {stages: [{duration: 1s, rate: 1}]}\n",
            "give either shape (closed model) or arrivals (open model), not both",
        ),
        ("arrivals: {stages: [{duration: 1s, rate: -3}]}\n", "arrivals.stages[0].rate: Input should be greater than or equal to 0"),
        ("arrivals: {stages: [{duration: 0s, rate: 3}]}\n", "arrivals.stages[0].duration: Input should be greater than 0"),
        ("arrivals: {stages: [{duration: 1s, rate: 0}]}\n", "arrivals: at least one stage needs a rate > 0"),
        ("arrivals: {kind: constant, curve: linear, stages: [{duration: 1s, rate: 3}]}\n", "arrivals: kind constant holds"),
        (
            "arrivals: {kind: burst, stages: [{duration: 1s, rate: 3}]}\n",
            "arrivals.kind: Input should be 'constant', 'ramping' or 'poisson'",
        ),
        ("arrivals: {pool: 10, max_pool: 5, stages: [{duration: 1s, rate: 3}]}\n", "arrivals: pool (10) must be <= max_pool (5)"),
        ("arrivals: {path: home, stages: [{duration: 1s, rate: 3}]}\n", "arrivals.path: expected a path starting with '/'"),
        (
            "arrivals: {stages: [{duration: 1s, rate: 3}]}\ncapacity: {start_rate: 10, factor: 1}\n",
            "capacity.factor: Input should be greater than 1",
        ),
    ],
)
def test_bad_sections_are_refused_with_the_field_path(tmp_path, body, message):
    with pytest.raises(ConfigError) as err:
        load_profile(write(tmp_path, body))
    assert message in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "p.yaml"))


def test_capacity_steps_are_geometric(tmp_path):
    p = load_profile(
        write(tmp_path, "arrivals: {stages: [{duration: 1s, rate: 3}]}\ncapacity: {start_rate: 20, factor: 2, step: 4s, max_steps: 4}\n")
    )
    assert p.capacity.rates() == [20, 40, 80, 160] and p.capacity.step == 4
