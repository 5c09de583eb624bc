"""Grafana dashboards as code: build the three peakload dashboards and write them as JSON.

* ``load-test.json`` — the load generator's view (uid ``peakload-load-test``)
* ``slo.json`` — error budgets and burn rates per SLO of the spec (uid ``peakload-slo``)
* ``platform.json`` — the storefront's own metrics (uid ``peakload-platform``)

Output is deterministic (sorted keys, ids in layout order), so the committed
``dashboards/generated/*.json`` can be compared byte for byte.

Usage::

    texts = build_dashboards(load_slo_spec("profiles/slo.yaml"))  # {"slo.json": "...", ...}
    paths = write_dashboards(spec, "dashboards/generated")
"""

from __future__ import annotations

from pathlib import Path

from dashboards.board_load_test import load_test_dashboard
from dashboards.board_platform import platform_dashboard
from dashboards.board_slo import slo_dashboard
from dashboards.errors import DashboardBuildError, RulesGenerationError
from dashboards.grafana_kit import render_dashboard
from dashboards.slo_model import to_model, validate
from peakload.core import SLOSpec

__all__ = ["DASHBOARD_FILES", "GENERATED_DIR", "build_dashboards", "write_dashboards"]

DASHBOARD_FILES = ("load-test.json", "slo.json", "platform.json")
GENERATED_DIR = Path(__file__).resolve().parent / "generated"


def build_dashboards(spec: SLOSpec) -> dict[str, str]:
    """Pure: file name → dashboard JSON text for every dashboard (the SLO one follows ``spec``)."""
    try:
        model = to_model(validate(spec))
    except RulesGenerationError as exc:
        raise DashboardBuildError(
            f"could not build the SLO dashboard: {exc.stage}: {exc.reason}" + (f' (SLO "{exc.slo}")' if exc.slo else "")
        ) from None
    boards = {
        "load-test.json": load_test_dashboard,
        "slo.json": lambda: slo_dashboard(model),
        "platform.json": platform_dashboard,
    }
    out: dict[str, str] = {}
    for name, build in boards.items():
        try:
            out[name] = render_dashboard(build())
        except (ValueError, TypeError, AttributeError) as exc:
            raise DashboardBuildError(f"could not build dashboard {name}: {exc}") from None
    return out


def write_dashboards(spec: SLOSpec, out_dir: str | Path) -> list[Path]:
    """Build every dashboard and write ``<out_dir>/<name>.json`` (creating the folder); returns the paths."""
    texts = build_dashboards(spec)
    folder = Path(out_dir)
    paths = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            path = folder / name
            path.write_text(text, encoding="utf-8")
            paths.append(path)
    except OSError as exc:
        raise DashboardBuildError(f"could not write dashboards to {folder}: {exc.strerror or exc}") from None
    return paths
