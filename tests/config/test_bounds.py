"""The README's bounds on profile numbers, at the bound and one past it (README "The profile format")."""

from __future__ import annotations

from pathlib import Path

import pytest

from peakload.core import ConfigError, load_profile

HEAD = "version: peakload/v1\nname: b\nslo: null\n"


@pytest.mark.parametrize(
    ("ok", "bad", "field"),
    [
        (
            "shape: {stages: [{kind: steady, duration: 1s, users: 10000000}]}",
            "shape: {stages: [{kind: steady, duration: 1s, users: 10000001}]}",
            "users",
        ),
        ("arrivals: {stages: [{duration: 1s, rate: 10000000}]}", "arrivals: {stages: [{duration: 1s, rate: 10000001}]}", "rate"),
        (
            "shape: {stages: [{kind: steady, duration: 366d, users: 1}]}",
            "shape: {stages: [{kind: steady, duration: 367d, users: 1}]}",
            "duration",
        ),
        (
            "shape: {stages: [{kind: steady, duration: 1s, users: 1}]}\nthresholds: {all: ['p95 < 3600s']}",
            "shape: {stages: [{kind: steady, duration: 1s, users: 1}]}\nthresholds: {all: ['p95 < 3601s']}",
            "1h",
        ),
    ],
)
def test_each_bound_admits_its_limit_and_refuses_one_more(tmp_path: Path, ok: str, bad: str, field: str) -> None:
    good = tmp_path / "ok.yaml"
    good.write_text(HEAD + ok + "\n")
    load_profile(good)
    over = tmp_path / "over.yaml"
    over.write_text(HEAD + bad + "\n")
    with pytest.raises(ConfigError, match=field):
        load_profile(over)
