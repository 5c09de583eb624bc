"""`peakload profile fit` on synthetic logs with known parameters (tests/scenarios/synthlog.py).

Tolerances (the same as docs/traffic-models.md): arrival rates within 5 %,
funnel ratios within 0.03 absolute, the Zipf exponent within 0.05, a rate
change placed within one grid step (100 ms).
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from peakload.core import load_profile
from tests.command import peakload
from tests.scenarios.synthlog import Truth, write_log

REPO = Path(__file__).resolve().parents[2]
RATE_TOL = 0.05
RATIO_TOL = 0.03
ZIPF_TOL = 0.05


def fit(log: Path, out: Path, *extra: str) -> tuple[dict, dict]:
    res = peakload("profile", "fit", str(log), "--out", str(out), *extra)
    assert res.returncode == 0, res.stderr
    profile = load_profile(out)  # it loads as a profile: it runs as written
    report = json.loads(out.with_name(out.stem + ".fit.json").read_text())
    return profile.model_dump(), report


def rate_at(stages: list[dict], t: float) -> float:
    at = 0.0
    for st in stages:
        if at <= t < at + st["duration"]:
            return st["rate"]
        at += st["duration"]
    raise AssertionError(f"no stage at {t}")


def assert_ratios(ratios: dict, truth: Truth) -> None:
    for name in ("search", "view_to_cart", "cart_edit", "cart_to_checkout", "checkout_to_pay"):
        assert abs(ratios[name] - getattr(truth, name)) <= RATIO_TOL, (name, ratios[name], getattr(truth, name))


def test_evenly_spaced_arrivals_and_the_funnel_come_back_within_tolerance(tmp_path: Path) -> None:
    truth = Truth(
        stages=[(40, 6.0), (25, 27.0), (35, 9.0)],
        search=0.42,
        view_to_cart=0.37,
        cart_edit=0.17,
        cart_to_checkout=0.63,
        checkout_to_pay=0.81,
        views=(2, 7),
        think=(0.25, 1.4),
        zipf=0.93,
        catalogue=5000,
    )
    write_log(tmp_path / "access.log", truth, seed=11)
    prof, report = fit(tmp_path / "access.log", tmp_path / "fitted.yaml", "--entry", "home", "--catalogue", "5000")
    stages = prof["arrivals"]["stages"]
    at = 0.0
    for duration, rate in truth.stages:  # the middle of every true stage
        assert abs(rate_at(stages, at + duration / 2) - rate) <= RATE_TOL * rate, (at, stages)
        at += duration
    assert prof["arrivals"]["kind"] == "constant"
    assert report["arrivals"]["stages"] == 3
    assert_ratios(prof["journey"]["ratios"], truth)
    assert abs(prof["journey"]["zipf_exponent"] - truth.zipf) <= ZIPF_TOL
    assert report["popularity"]["fits"] is True and not prof["journey"]["hot_skus"]
    sa, tt = prof["journey"]["session_actions"], prof["journey"]["think_time"]
    assert (sa["min"], sa["max"]) == truth.views
    assert abs(tt["min"] - truth.think[0]) <= 0.01 and abs(tt["max"] - truth.think[1]) <= 0.01
    assert abs(tt["quantiles"]["p50"] - sum(truth.think) / 2) <= 0.05  # uniform: the median is the middle
    assert report["sessions"]["fitted"] == truth.sessions
    assert "coupon" in report["not_fitted"] and "n/a" in report["not_fitted"]["coupon"]


def test_poisson_arrivals_a_sub_second_cliff_and_growth(tmp_path: Path) -> None:
    truth = Truth(stages=[(50, 30.0), (40, 160.0)], kind="poisson", views=(1, 2), think=(0.05, 0.2))
    write_log(tmp_path / "access.log", truth, seed=5)
    prof, report = fit(tmp_path / "access.log", tmp_path / "fitted.yaml", "--entry", "home", "--growth", "1.3")
    stages = prof["arrivals"]["stages"]
    assert prof["arrivals"]["kind"] == "poisson", report["arrivals"]
    for t, rate in ((25, 30.0), (70, 160.0)):
        assert abs(rate_at(stages, t) - rate * 1.3) <= RATE_TOL * rate * 1.3, stages
    # the cliff at T+50 s lands within one 100 ms grid step
    edges, at = [], 0.0
    for st in stages[:-1]:
        at += st["duration"]
        edges.append(at)
    assert any(abs(e - 50.0) <= 0.1 + 1e-9 for e in edges), edges
    assert report["arrivals"]["growth"] == 1.3


def test_a_midnight_window_compressed_ten_times(tmp_path: Path) -> None:
    # 23:58..00:02 of a log that runs 23:55..00:05: the window is the peak only
    start = 1_796_342_400.0 - 300  # 2026-12-03T23:55:00Z
    truth = Truth(stages=[(180, 2.0), (240, 12.0), (180, 2.0)], t0=start, views=(1, 2), think=(0.05, 0.1))
    write_log(tmp_path / "access.log", truth, seed=9)
    prof, report = fit(tmp_path / "access.log", tmp_path / "fitted.yaml", "--entry", "home", "--window", "23:58..00:02", "--compress", "10")
    stages = prof["arrivals"]["stages"]
    total = sum(st["duration"] for st in stages)
    assert abs(total - 24.0) <= 0.5, stages  # 4 minutes of log in 24 s
    assert all(abs(st["rate"] - 120.0) <= RATE_TOL * 120 for st in stages), stages  # 12/s × 10
    assert report["arrivals"]["window"]["from"].startswith("2026-12-03T23:58")


def test_popularity_that_is_not_zipf_gives_the_hot_skus(tmp_path: Path) -> None:
    # one item takes 40 % of the views, the rest are uniform: no Zipf exponent explains that
    import random

    from tests.scenarios import synthlog

    rng = random.Random(3)

    class Skewed:
        def item(self) -> int:
            return 77 if rng.random() < 0.4 else rng.randint(1, 3000)

    truth = Truth(stages=[(60, 10.0)], views=(3, 6), catalogue=3000)
    lines = []
    srng = random.Random(4)
    for k in range(600):
        lines += synthlog.session_lines(truth, truth.t0 + k / 10, k + 1, srng, Skewed())  # type: ignore[arg-type]
    (tmp_path / "access.log").write_text("".join(line for _t, line in sorted(lines)))
    prof, report = fit(tmp_path / "access.log", tmp_path / "fitted.yaml", "--entry", "home", "--catalogue", "3000")
    assert report["popularity"]["fits"] is False, report["popularity"]
    hot = prof["journey"]["hot_skus"]
    assert abs(hot["SKU-000077"] - 0.4) <= 0.03 and sum(hot.values()) <= 1


def test_flash_sale_bursts_unknown_routes_bad_lines_and_gzip(tmp_path: Path) -> None:
    truth = Truth(stages=[(120, 5.0)], views=(2, 4), think=(0.2, 0.5), catalogue=2000)
    log = tmp_path / "access.log.gz"
    write_log(log, truth, seed=2, gz=True)
    extra = [
        f'127.0.0.1 - 9{k} [03/Dec/2026:00:01:0{k % 5}.{k:03d} +0000] "GET /api/products/FLASH-0001 HTTP/1.1" 200 99 "-" "x" 0.002\n'
        for k in range(60)
    ]
    extra += ['127.0.0.1 - - [03/Dec/2026:00:00:30.000 +0000] "GET /api/recommendations/42 HTTP/1.1" 200 9 "-" "x" 0.001\n'] * 7
    extra += ["this is not a log line\n", "\x00\xff garbage\n"]
    with gzip.open(tmp_path / "more.log.gz", "wt") as fh:
        fh.writelines(extra)
    prof, report = fit(log, tmp_path / "fitted.yaml")  # type: ignore[arg-type]
    res = peakload("profile", "fit", str(log), str(tmp_path / "more.log.gz"), "--out", str(tmp_path / "two.yaml"), "--entry", "home")
    assert res.returncode == 0, res.stderr
    rep = json.loads((tmp_path / "two.fit.json").read_text())
    assert rep["inputs"]["bad_lines"] == 2 and len(rep["inputs"]["bad_examples"]) == 2
    assert rep["routes"]["unknown_routes"] == [{"route": "GET /api/recommendations/{id}", "requests": 7}]
    flash = rep["flash_sale_candidates"]
    assert flash and flash[0]["item"] == "FLASH-0001" and flash[0]["views"] >= 30, flash
    assert "fit [" in res.stderr  # the progress bar (a line per few seconds when stderr is not a terminal)


def test_json_lines_with_a_field_map_and_haproxy_logs(tmp_path: Path) -> None:
    truth = Truth(stages=[(60, 4.0)], views=(2, 3), think=(0.2, 0.4), catalogue=500)
    write_log(tmp_path / "access.log", truth, seed=8)
    from peakload.core.accesslog import AccessLog

    records = list(AccessLog([tmp_path / "access.log"]).records())
    checkouts = 0
    with open(tmp_path / "access.jsonl", "w") as fh:
        for r in records:
            uri = r.path + ("?" + r.query if r.query else "")
            obj = {"ts": r.t, "req": {"verb": r.method, "uri": uri}, "code": r.status, "uid": r.user, "took": r.duration}
            if r.method == "POST" and r.path == "/api/orders":
                checkouts += 1
                if checkouts % 3 == 0:  # a third of the orders carry a coupon
                    obj["promo"] = "SAVE10"
            fh.write(json.dumps(obj) + "\n")
    with open(tmp_path / "haproxy.log", "w") as fh:
        import datetime as dt

        for r in records:
            d = dt.datetime.fromtimestamp(r.t, dt.UTC)
            stamp = d.strftime("%d/%b/%Y:%H:%M:%S.") + f"{d.microsecond // 1000:03d}"
            ms = int((r.duration or 0) * 1000)
            uri = r.path + ("?" + r.query if r.query else "")
            fh.write(
                f"Dec  3 00:00:00 lb haproxy[123]: 10.0.{int(r.user) % 250}.{int(r.user) // 250 % 250}:4{int(r.user) % 9}000 [{stamp}] "
                f'shop shop/s1 0/0/0/{ms}/{ms} {r.status} 321 - - ---- 1/1/0/0/0 0/0 "{r.method} {uri} HTTP/1.1"\n'
            )
    base, brep = fit(tmp_path / "access.log", tmp_path / "a.yaml", "--entry", "home")
    js, jrep = fit(
        tmp_path / "access.jsonl",
        tmp_path / "b.yaml",
        "--entry",
        "home",
        "--format",
        "jsonl",
        "--field-map",
        "time=ts,method=req.verb,path=req.uri,status=code,user=uid,duration=took,coupon=promo",
    )
    hp, hrep = fit(tmp_path / "haproxy.log", tmp_path / "c.yaml", "--entry", "home", "--format", "haproxy")
    assert js["arrivals"]["stages"] == base["arrivals"]["stages"]
    assert js["journey"]["ratios"] == {**base["journey"]["ratios"], "coupon": js["journey"]["ratios"]["coupon"]}
    assert jrep["ratios"]["coupon"]["value"] == round((checkouts // 3) / checkouts, 4)  # the log's coupon field, exactly
    assert "coupon" in brep["not_fitted"] and "coupon" not in jrep["not_fitted"]  # a combined log has none: the default stays
    assert hrep["sessions"]["fitted"] == truth.sessions  # keyed by client address: one address per user here
    assert hp["journey"]["ratios"] == base["journey"]["ratios"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["{missing}"], "file not found"),
        (["{dir}"], "is a folder"),
        (["{empty}"], "empty"),
        (["{binary}"], "is a combined access log"),
        (["{log}", "--format", "jsonl"], "jsonl access log"),
        (["{log}", "--window", "25:00..01:00"], "--window"),
        (["{log}", "--growth", "inf"], "--growth"),
        (["{log}", "--growth", "0"], "--growth"),
        (["{log}", "--compress", "-1"], "--compress"),
        (["{log}", "--entry", "basket"], "--entry"),
        (["{log}", "--resolution", "0s"], "--resolution"),
        (["{log}", "--dialect", "no such thing"], "--dialect"),
        (["{log}", "--field-map", "when=ts"], "--field-map"),
        (["{log}", "--catalogue", "0"], "--catalogue"),
        (["{log}", "--out-dir-is-file"], "--out"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, args: list[str], needle: str) -> None:
    log = tmp_path / "access.log"
    write_log(log, Truth(stages=[(20, 3.0)], views=(1, 2), think=(0.1, 0.2)), seed=1)
    (tmp_path / "empty.log").write_text("")
    (tmp_path / "binary.log").write_bytes(os.urandom(200_000))
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    names = {
        "missing": tmp_path / "nope.log",
        "dir": tmp_path / "adir",
        "empty": tmp_path / "empty.log",
        "binary": tmp_path / "binary.log",
        "log": log,
    }
    out = tmp_path / "out" / "fitted.yaml"
    argv = [a.format(**names) for a in args if a != "--out-dir-is-file"]
    if "--out-dir-is-file" in args:
        out = tmp_path / "afile" / "fitted.yaml"
    res = peakload("profile", "fit", *argv, "--out", str(out))
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr
    assert not out.exists() and not out.with_name("fitted.fit.json").exists()


def test_an_existing_profile_is_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "fitted.yaml"
    out.write_text("keep me\n")
    res = peakload("profile", "fit", str(tmp_path / "missing.log"), "--out", str(out))
    assert res.returncode == 2 and out.read_text() == "keep me\n"
    assert [p.name for p in tmp_path.iterdir()] == ["fitted.yaml"]  # no temp file left behind


def test_oscar_routes_map_to_steps_and_a_missing_payment_step_is_not_fitted(tmp_path: Path) -> None:
    """django-oscar's routes (LOG_STEPS of scenarios/oscar.py): the price request is part of the product view,
    the added item is in the body (the view before it names it), and Oscar has no payment step."""
    lines, t = [], 1_796_256_000.0
    adds = views = carted = checked_out = 0
    for k in range(200):
        user = k + 1

        def req(method: str, path: str, status: int = 200) -> None:
            nonlocal t
            lines.append(f'10.0.0.1 - {user} [{_clock(t)}] "{method} {path} HTTP/1.1" {status} 99 "-" "ua" 0.010\n')
            t += 0.3

        req("GET", "/api/categories/")
        in_cart = False
        for j in range(3):
            req("GET", f"/api/products/{(k * 7 + j) % 50 + 1}/")
            req("GET", f"/api/products/{(k * 7 + j) % 50 + 1}/price/")
            views += 1
            if j == 0 and k % 2 == 0:
                req("POST", "/api/basket/add-product/")
                adds += 1
                in_cart = True
        if in_cart:
            carted += 1
            if k % 4 == 0:
                req("GET", "/api/basket/")
                req("POST", "/api/checkout/")
                checked_out += 1
    (tmp_path / "oscar.log").write_text("".join(lines))
    prof, report = fit(tmp_path / "oscar.log", tmp_path / "fitted.yaml", "--dialect", "oscar", "--entry", "home")
    assert prof["target"]["dialect"] == "oscar"
    assert report["counts"]["product_views"] == views  # the price requests are not views of their own
    ratios = report["ratios"]
    assert ratios["view_to_cart"]["count"] == adds and ratios["view_to_cart"]["of"] == views
    assert ratios["cart_to_checkout"]["count"] == checked_out and ratios["cart_to_checkout"]["of"] == carted
    assert "no payment step" in report["not_fitted"]["checkout_to_pay"]
    assert "    checkout_to_pay:" not in (tmp_path / "fitted.yaml").read_text()  # not written: the default stays
    assert report["routes"]["unknown_requests"] == 0


def test_a_visit_whose_slow_last_request_ends_at_the_end_of_the_log_is_cut_off(tmp_path: Path) -> None:
    """Under load a checkout can take seconds: a visit whose last request *ended* near the end of the log was
    still going (its pay decision not reached), even when that request *began* long before the end."""
    lines, t0 = [], 1_796_256_000.0

    def req(user: int, t: float, method: str, path: str, status: int = 200, duration: float = 0.01) -> float:
        lines.append((t, f'127.0.0.1 - {user} [{_clock(t)}] "{method} {path} HTTP/1.1" {status} 99 "-" "ua" {duration:.4f}\n'))
        return t + duration + 0.1

    for k in range(60):  # every finished visit that ordered also paid
        t = req(k + 1, t0 + k * 0.5, "GET", "/api/home")
        t = req(k + 1, t, "GET", f"/api/products/SKU-{k % 9 + 1:06d}")
        t = req(k + 1, t, "PUT", f"/api/cart/items/SKU-{k % 9 + 1:06d}")
        t = req(k + 1, t, "GET", "/api/cart")
        t = req(k + 1, t, "POST", "/api/orders", 201)
        req(k + 1, t, "POST", f"/api/orders/{k + 1}/payment")
    end = t0 + 60 * 0.5 + 10.0
    for k in range(60, 70):  # these ordered; their checkout took 6 s and ended just before the log did
        t = req(k + 1, end - 9.0, "GET", "/api/home")
        t = req(k + 1, t, "GET", "/api/products/SKU-000001")
        t = req(k + 1, t, "PUT", "/api/cart/items/SKU-000001")
        t = req(k + 1, t, "GET", "/api/cart")
        req(k + 1, end - 6.5, "POST", "/api/orders", 201, duration=6.0)
    req(999, end, "GET", "/api/home")  # the last request the log holds
    (tmp_path / "slow.log").write_text("".join(line for _, line in sorted(lines)))
    _prof, report = fit(tmp_path / "slow.log", tmp_path / "fitted.yaml", "--entry", "home")
    assert report["sessions"]["cut_off_by_the_end_of_the_log"] >= 10
    pay = report["ratios"]["checkout_to_pay"]
    assert pay["of"] == 60 and pay["count"] == 60, pay  # the ten slow ones did not decide: not ten "no"s


def _clock(t: float) -> str:
    import datetime as dt

    d = dt.datetime.fromtimestamp(t, dt.UTC)
    return d.strftime("%d/%b/%Y:%H:%M:%S.") + f"{d.microsecond // 1000:03d} +0000"
