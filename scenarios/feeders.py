"""Feeders (CSV rows split without overlap) and the per-process catalogue from pre-flight discovery.

A feeder row goes to exactly one simulated user: user ``number`` on worker
``worker`` of ``workers`` takes row ``number * workers + worker`` — disjoint
slices, interleaved so every worker draws from the whole file. ``peakload run``
refuses a run whose peak users outnumber a feeder's rows before it starts
(:func:`check_feeders`); a row index past the end wraps only for users that
replace stopped ones.

Usage::

    rows = read_feeder(Path("users.csv"), columns=("username", "password"), field="target.feeders.users")
    row = pick_row(rows, number=3, worker=1, workers=2)          # rows[7]
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from peakload.core import ConfigError
from peakload.core.inputs import read_text

__all__ = ["FEEDER_COLUMNS", "read_feeder", "pick_row", "feeder_rows", "check_feeders"]

FEEDER_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("username", "password"),
    "skus": ("sku",),
    "coupons": ("code",),
    "addresses": ("name", "line1", "city", "postcode", "country"),
}
MAX_FEEDER_ROWS = 10_000_000


def read_feeder(path: Path, *, columns: Sequence[str], field: str) -> list[dict[str, str]]:
    """The rows of a CSV with a header naming at least ``columns``; ConfigError (one line) otherwise."""
    text = read_text(path, what=field, max_bytes=512 << 20)
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in columns if c not in header]
    if missing:
        raise ConfigError(f"{field}: {path}: expected a CSV header with {', '.join(columns)}; missing {missing[0]!r} (header: {header})")
    rows: list[dict[str, str]] = []
    try:
        for i, row in enumerate(reader, start=2):
            if None in row or any(row.get(c) in (None, "") for c in columns):
                raise ConfigError(f"{field}: {path}: line {i}: expected a value in every column {', '.join(columns)}")
            rows.append({k: v for k, v in row.items() if k is not None})
            if len(rows) > MAX_FEEDER_ROWS:
                raise ConfigError(f"{field}: {path}: more than {MAX_FEEDER_ROWS} rows")
    except csv.Error as exc:
        raise ConfigError(f"{field}: {path}: not a readable CSV ({exc})") from None
    if not rows:
        raise ConfigError(f"{field}: {path}: no rows under the header")
    return rows


def feeder_rows(feeders: object, base_dir: Path) -> dict[str, list[dict[str, str]]]:
    """Every feeder a profile's ``target.feeders`` names, read and checked (key → rows)."""
    out = {}
    for key, columns in FEEDER_COLUMNS.items():
        name = getattr(feeders, key, None)
        if name:
            p = Path(name)
            out[key] = read_feeder(p if p.is_absolute() else base_dir / p, columns=columns, field=f"target.feeders.{key}")
    return out


def pick_row(rows: Sequence[dict[str, str]], *, number: int, worker: int, workers: int) -> dict[str, str]:
    """The row of user ``number`` on ``worker``: disjoint across users and workers while they fit."""
    return rows[(number * max(workers, 1) + worker) % len(rows)]


def check_feeders(rows: dict[str, list[dict[str, str]]], *, peak_users: int) -> None:
    """Refuse a run that needs more unique rows than a feeder holds (users and addresses are per user)."""
    for key in ("users", "coupons", "addresses"):
        have = len(rows.get(key, ()))
        if have and peak_users > have:
            raise ConfigError(
                f"target.feeders.{key}: the run needs {peak_users} unique rows (its peak users) but the feeder holds {have}; "
                "add rows or lower the users"
            )
