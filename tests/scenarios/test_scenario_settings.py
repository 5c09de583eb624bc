"""Settings from the PEAKLOAD_* environment (contracts §3): defaults, overrides, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from peakload.core import ConfigError
from scenarios.settings import read_settings, user_rng

PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def test_defaults_run_the_smoke_profile_with_its_seed() -> None:
    s = read_settings({})
    assert s.profile.name == "smoke"
    assert s.seed == s.profile.seed
    assert s.scale == 1.0 and s.duration is None and s.results_dir is None
    assert s.metrics_port == 0 and s.snapshot_interval == 2.0
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{4}", s.run_id)


def test_every_variable_is_read() -> None:
    s = read_settings(
        {
            "PEAKLOAD_PROFILE": str(PROFILES / "flash-sale.yaml"),
            "PEAKLOAD_RUN_ID": "run-7",
            "PEAKLOAD_SEED": "99",
            "PEAKLOAD_SCALE": "0.25",
            "PEAKLOAD_DURATION": "12.5",
            "PEAKLOAD_RESULTS_DIR": "/tmp/results/run-7",
            "PEAKLOAD_METRICS_PORT": "9646",
            "PEAKLOAD_SNAPSHOT_INTERVAL": "1",
        }
    )
    assert s.profile.name == "flash-sale" and s.run_id == "run-7" and s.seed == 99
    assert (s.scale, s.duration, str(s.results_dir), s.metrics_port, s.snapshot_interval) == (0.25, 12.5, "/tmp/results/run-7", 9646, 1.0)


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("PEAKLOAD_SEED", "abc", "PEAKLOAD_SEED: expected an integer, got 'abc'"),
        ("PEAKLOAD_SCALE", "0", "PEAKLOAD_SCALE: expected a number > 0, got '0'"),
        ("PEAKLOAD_DURATION", "-5", "PEAKLOAD_DURATION: expected a number > 0, got '-5'"),
    ],
)
def test_bad_values_name_the_variable(var: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        read_settings({var: value})
    assert str(err.value) == message


def test_missing_profile_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        read_settings({"PEAKLOAD_PROFILE": str(PROFILES / "nope.yaml")})


def test_user_rng_is_reproducible_and_distinct_per_user() -> None:
    a = [user_rng(42, kind="shopper", worker=0, number=3).random() for _ in range(2)]
    assert a[0] == a[1]
    others = {
        user_rng(42, kind="shopper", worker=0, number=4).random(),
        user_rng(42, kind="shopper", worker=1, number=3).random(),
        user_rng(43, kind="shopper", worker=0, number=3).random(),
        user_rng(42, kind="flash_buyer", worker=0, number=3).random(),
    }
    assert a[0] not in others and len(others) == 4
