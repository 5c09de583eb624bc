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
    assert "<script src" not in html.read_text() and "http://" not in html.read_text().replace("http://127.0.0.1:1", "")

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


# Drives the report's own zoom script in Chromium as a person would with a mouse: press at a quarter of the load
# chart's plot, drag to its middle, release; then double-click. The page records what the chart shows.
_DRIVE = """<script>
var svg = document.getElementById("chart-load"), r = svg.getBoundingClientRect();
var L = +svg.dataset.l, PW = +svg.dataset.pw, W = svg.viewBox.baseVal.width;
function at(kind, f, target) {
  var x = r.left + r.width * (L + PW * f) / W;
  (target || svg).dispatchEvent(new MouseEvent(kind, {clientX: x, clientY: r.top + 60, bubbles: true}));
}
function ticks() { return Array.from(svg.querySelectorAll("text.xtick")).map(function (t) { return t.textContent; }).join(","); }
var before = ticks();
at("mousedown", 0.25); at("mousemove", 0.5); at("mouseup", 0.5, window);
document.body.dataset.before = before;
document.body.dataset.zoomed = ticks();
document.body.dataset.transform = svg.querySelector("g.zoom").getAttribute("transform") || "none";
svg.dispatchEvent(new MouseEvent("dblclick", {bubbles: true}));
document.body.dataset.reset = ticks();
document.body.dataset.resetTransform = svg.querySelector("g.zoom").getAttribute("transform") || "none";
</script></body>"""


def test_dragging_across_a_chart_zooms_into_that_span_and_a_double_click_goes_back(tmp_path: Path) -> None:
    import html as htmllib
    import re

    run = tmp_path / "run"
    write_synthetic_run(run, names=2, seconds=120)
    write_reports(run, [parse_threshold("all", "error_ratio < 1%")])
    page = (run / "report.html").read_text()
    assert 'svg class="chart zoomable"' in page and "<script src" not in page
    driven = tmp_path / "driven.html"
    driven.write_text(page.replace("</body>", _DRIVE))
    dom = _chromium(tmp_path, "--dump-dom", driven.as_uri()).stdout
    body = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', re.search(r"<body[^>]*>", dom).group(0)))  # type: ignore[union-attr]
    body = {k: htmllib.unescape(v) for k, v in body.items()}
    before, zoomed, reset = (body[k].split(",") for k in ("before", "zoomed", "reset"))
    xmax = float(before[-1].rstrip("s"))
    # the six time ticks now span a quarter of the run, from a quarter to the half (within a pixel's rounding)
    assert float(zoomed[0].rstrip("s")) == pytest.approx(xmax * 0.25, abs=xmax * 0.01), zoomed
    assert float(zoomed[-1].rstrip("s")) == pytest.approx(xmax * 0.5, abs=xmax * 0.01), zoomed
    assert body["transform"].startswith("translate(") and "scale(" in body["transform"]
    assert reset == before and body["reset-transform"] == "none"
