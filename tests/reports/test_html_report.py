"""report.html as a person reads it: values on hover (SVG <title>, no network; zoom by an inline script), event times as offsets
from the run's start and UTC clock time (never raw epoch seconds), and a sentence instead of an empty thresholds table."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

from peakload.core import parse_threshold
from reports.build import write_reports
from reports.synthetic import write_synthetic_run

T0 = 1_764_000_000.0  # write_synthetic_run's first interval start
EVENT_T = T0 + 30.25


class _Titles(HTMLParser):
    """The text of each <title> inside an SVG <circle> (a point) or <rect> (a bar)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.points: list[str] = []
        self.bars: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if len(self.stack) >= 2 and self.stack[-1] == "title":
            {"circle": self.points, "rect": self.bars}.get(self.stack[-2], []).append(data)


def _report(tmp_path: Path, profile: str | None, thresholds: list) -> tuple[str, str]:
    run = tmp_path / "run"
    write_synthetic_run(run, names=2, seconds=60)
    (run / "events.jsonl").write_text(f'{{"t": {EVENT_T}, "kind": "chaos", "name": "kill replica", "detail": "storefront-2"}}\n')
    if profile is not None:
        (run / "profile.yaml").write_text(profile)
    report = write_reports(run, thresholds)
    html = (run / "report.html").read_text()
    assert report.summary.events  # the event reached the summary (and the table below)
    return html, (run / "summary.md").read_text()


def test_points_and_bars_carry_their_value_on_hover_without_a_library_or_network(tmp_path: Path) -> None:
    html, _ = _report(tmp_path, None, [parse_threshold("all", "p95 < 1s")])
    assert "<script src" not in html and "http://" not in html.replace("http://127.0.0.1:1", "")
    titles = _Titles()
    titles.feed(html)
    # every point of every line has a hover title; the rps line's values are the timeline's, at its times
    assert len(titles.points) == html.count("<circle") and len(titles.points) > 100
    rps = [t for t in titles.points if t.startswith("rps: ")]
    assert len(rps) == 30  # 60 s of 2 s intervals
    assert rps[0] == "rps: 40 at T+2.0 s" and rps[-1] == "rps: 40 at T+60.0 s"  # 2 names × 20 rps
    assert any(re.fullmatch(r"p95: [\d.]+ms at T\+\d+\.\d s", t) for t in titles.points)
    # bars: the distribution's shares and the funnel's counts
    assert any(re.fullmatch(r"≤\d+: [\d.]+%", t) for t in titles.bars)
    assert any(t.startswith("views: ") for t in titles.bars)


def test_event_times_are_offsets_and_utc_clock_never_raw_epoch(tmp_path: Path) -> None:
    html, _ = _report(tmp_path, None, [parse_threshold("all", "p95 < 1s")])
    events = html[html.index("<table id='events'>") :]
    events = events[: events.index("</table>")]
    clock = dt.datetime.fromtimestamp(EVENT_T, dt.UTC).strftime("%H:%M:%S.250 UTC")
    assert "<td>T+30.2 s</td>" in events or "<td>T+30.3 s</td>" in events
    assert f"<td>{clock}</td>" in events and "kill replica" in events
    assert str(int(EVENT_T)) not in html and str(EVENT_T) not in html  # no raw epoch anywhere in the page


def test_no_thresholds_is_a_sentence_not_an_empty_table(tmp_path: Path) -> None:
    base = "version: peakload/v1\nname: p\nslo: null\nshape: {{stages: [{{kind: steady, duration: 60s, users: 1}}]}}\nthresholds: {t}\n"
    html, md = _report(tmp_path / "none-declared", base.format(t="{}"), [])
    assert '<table id="thresholds">' not in html
    assert "No thresholds declared" in html and "No thresholds declared" in md
    assert "| result | scope |" not in md
    html, md = _report(tmp_path / "by-design", base.format(t="none").replace("slo: null\n", ""), [])
    assert '<table id="thresholds">' not in html and "<tr><th>result</th>" not in html
    assert "No thresholds by design" in html and "No thresholds by design" in md
    # with thresholds, the table is there
    html, _ = _report(tmp_path / "declared", base.format(t="{all: [p95 < 1s]}"), [parse_threshold("all", "p95 < 1s")])
    assert '<table id="thresholds">' in html and "No thresholds" not in html
