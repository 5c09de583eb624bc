"""report.html renders its charts in a real headless Chromium, with the network off."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from peakload.core import parse_threshold
from reports.build import write_reports
from reports.synthetic import write_synthetic_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (make test installs it)")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # --proxy-server to a closed port: any network fetch by the page would fail, so it must be self-contained.
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--proxy-server=127.0.0.1:9", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_report_renders_charts_in_chromium(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, names=3, seconds=120)
    (run / "events.jsonl").write_text('{"t": 1764000030.0, "kind": "chaos", "name": "kill replica", "detail": "storefront-2"}\n')
    write_reports(run, [parse_threshold("all", "p95 < 1ms"), parse_threshold("all", "error_ratio < 1%")])
    html = run / "report.html"
    assert "<script" not in html.read_text() and "http://" not in html.read_text().replace("http://127.0.0.1:1", "")

    dom = _chromium(tmp_path, "--dump-dom", html.as_uri()).stdout
    for chart in ("chart-load", "chart-latency", "chart-latency-names", "chart-errors", "chart-distribution", "chart-funnel"):
        assert f'id="{chart}"' in dom, chart
    assert dom.count("<polyline") >= 8 and 'class="annotation"' in dom
    assert dom.count('class="fail"') == 1  # the p95 < 1ms threshold

    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2400", html.as_uri())
    img = Image.open(shot).convert("RGB")
    colors = img.getcolors(maxcolors=1_000_000) or []
    assert len(colors) > 50, "screenshot is blank"
    # The chart line colours are present in the pixels (the SVG really rendered).
    pixels = {c for _, c in colors}
    assert (0x1F, 0x77, 0xB4) in pixels and (0xD6, 0x27, 0x28) in pixels
