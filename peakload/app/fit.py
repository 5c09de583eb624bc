"""``peakload profile fit LOG... --out profile.yaml``: read access logs, write a profile and its fit report.

Usage::

    code = fit_command(FitRequest(logs=[Path("access.log")], out=Path("fitted.yaml"), options=FitOptions()))

The profile is written only after it loads back as a valid profile (through
a temp file and a rename: an existing file is replaced whole or not at all);
the report goes next to it as ``<name>.fit.json`` unless ``report`` says where.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from peakload.core import ConfigError, TargetSpec, UsageError, load_profile
from peakload.core.accesslog import LogStats
from peakload.core.inputs import check_out_dir, write_atomic
from scenarios.dialects import load_dialect
from scenarios.fit import Fit, FitOptions, fit_logs

__all__ = ["FitRequest", "fit_command", "Progress"]


@dataclass(frozen=True)
class FitRequest:
    logs: list[Path]
    out: Path
    options: FitOptions
    dialect: str = "storefront"
    report: Path | None = None
    quiet: bool = False


class Progress:
    """A progress bar on a terminal (stderr), a line every few seconds otherwise; nothing when quiet."""

    def __init__(self, *, quiet: bool, stream=None) -> None:  # type: ignore[no-untyped-def]
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.began = time.monotonic()
        self.last = 0.0

    def __call__(self, stats: LogStats) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        done = stats.bytes_read >= stats.bytes_total > 0
        if not done and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        share = stats.bytes_read / stats.bytes_total if stats.bytes_total else 0.0
        rate = stats.lines / max(now - self.began, 1e-9)
        width = 30
        bar = "#" * int(share * width) + "-" * (width - int(share * width))
        text = f"fit [{bar}] {share * 100:5.1f}%  {stats.lines:,} lines  {rate:,.0f} lines/s  {stats.bad:,} bad"
        if self.tty:
            self.stream.write("\r\x1b[2K" + text + ("\n" if done else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def fit_command(req: FitRequest) -> int:
    out = req.out
    if out.suffix not in (".yaml", ".yml"):
        raise UsageError(f"--out: expected a .yaml file, got {out}")
    check_out_dir(out.parent if str(out.parent) else Path("."), field="--out")
    if out.is_dir():
        raise UsageError(f"--out: {out} is a folder; expected a .yaml file")
    report_path = req.report or out.with_name(out.stem + ".fit.json")
    check_out_dir(report_path.parent if str(report_path.parent) else Path("."), field="--report")
    try:
        target = TargetSpec(dialect=req.dialect)
    except ValueError:
        raise UsageError(f"--dialect: expected storefront, oscar or module:Class, got {req.dialect[:80]!r}") from None
    shop = load_dialect(target)
    progress = Progress(quiet=req.quiet)
    fit = fit_logs(req.logs, req.options, shop=shop, target=target, progress=progress)
    text = fit.profile_yaml(sources=[p.name for p in req.logs])
    out.parent.mkdir(parents=True, exist_ok=True)
    # the profile must load back before it replaces anything: validate a temp copy beside the destination
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            load_profile(tmp)
        except ConfigError as exc:
            raise AssertionError(f"the fitted profile does not load back ({exc}); please report this") from None
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    write_atomic(report_path, json.dumps(fit.report, indent=2, default=str) + "\n")
    if not req.quiet:
        print(_summary(fit, out, report_path))
    return 0


def _summary(fit: Fit, out: Path, report_path: Path) -> str:
    r = fit.report
    arr, ses, inp = r["arrivals"], r["sessions"], r["inputs"]
    lines = [
        f"fitted {ses['fitted']:,} sessions from {inp['parsed']:,} requests ({inp['bad_lines']:,} bad lines, "
        f"{r['routes']['unknown_requests']:,} on unknown routes) in {inp['seconds']:.1f}s ({inp['lines_per_second'] or 0:,} lines/s)",
        f"  arrivals: {arr['stages']} stages ({arr['kind']}), peak {arr['peak']['rate']:.4g} sessions/s at {arr['peak']['at']}",
    ]
    ratios = fit.journey.get("ratios", {})
    if ratios:
        lines.append("  ratios: " + ", ".join(f"{k} {v:g}" for k, v in ratios.items()))
    pop = r["popularity"]
    if pop.get("exponent") is not None:
        lines.append(
            f"  zipf exponent {pop['exponent']:g} over {pop['catalogue']:,} items (KS {pop['ks_distance']:g}, {'fits' if pop['fits'] else 'fits badly'})"
        )
    for name, why in r["not_fitted"].items():
        lines.append(f"  {name}: {why}")
    if r["routes"]["unknown_routes"]:
        top = r["routes"]["unknown_routes"][0]
        lines.append(
            f"  unknown routes: {len(r['routes']['unknown_routes'])} listed in the report (top: {top['route']}, {top['requests']:,})"
        )
    lines.append(f"profile: {out}  (fit report: {report_path})")
    return "\n".join(lines)
