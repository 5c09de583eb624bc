"""Dialect loading, feeders and the isolation guard: what `peakload run` refuses before any load, in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from peakload.core import ConfigError, TargetSpec
from peakload.core.steps import STEPS
from scenarios.client import ShopClient
from scenarios.dialects import load_dialect, not_offered
from scenarios.feeders import check_feeders, pick_row, read_feeder
from scenarios.oscar import OscarShop, cents

REPO = Path(__file__).resolve().parents[2]

MY_SHOP = """
from scenarios.shop import BaseShop, Catalogue
from peakload.core.steps import STEPS


class MyShop(BaseShop):
    PATHS = {"health": "/up", "home": "/"}
    OFFERS = frozenset({"home", "product"})

    def discover(self, *, flash_sku=None): return Catalogue(items=("a",), categories=())
    def sign_in(self, username, password): return True
    def home(self): return None
    def category(self, category_id, *, page=1, size=20): return None
    def search(self, q, *, page=1): return None
    def product(self, item): return None
    def cart(self): return None
    def cart_add(self, product, quantity): return "error"
    def cart_update(self, item, quantity): return "error"
    def cart_remove(self, item): return False
    def checkout(self, *, address, idempotency_key, coupon=None, items=None, flash=False): return None
    def pay(self, order_id, *, idempotency_key): return None
    def order(self, order_id, *, expect_status=None): return None
"""


def test_builtin_dialects_and_what_they_offer() -> None:
    assert load_dialect(TargetSpec()) is ShopClient
    assert load_dialect(TargetSpec(dialect="oscar")) is OscarShop
    assert not_offered(ShopClient) == []
    assert not_offered(OscarShop) == ["pay"]
    assert ShopClient.ISOLATES and not OscarShop.ISOLATES


def test_a_users_adapter_loads_from_the_profiles_folder(tmp_path: Path) -> None:
    (tmp_path / "my_shop_mod.py").write_text(MY_SHOP)
    cls = load_dialect(TargetSpec(dialect="my_shop_mod:MyShop", paths={"home": "/start"}), base_dir=tmp_path)
    assert cls.__name__ == "MyShop" and not_offered(cls)[:2] == ["sign_in", "category"]


@pytest.mark.parametrize(
    ("dialect", "paths", "message"),
    [
        ("nowhere_mod:Shop", {}, "target.dialect: cannot import 'nowhere_mod'"),
        ("my_shop_mod:Missing", {}, "target.dialect: 'my_shop_mod' has no class 'Missing'"),
        ("my_shop_mod:MyShop", {"checkout": "/buy"}, "target.paths: unknown key 'checkout' for dialect my_shop_mod:MyShop"),
        ("broken_mod:X", {}, "target.dialect: importing 'broken_mod' failed: ZeroDivisionError"),
    ],
)
def test_a_wrong_dialect_is_one_line_naming_the_field(tmp_path: Path, dialect: str, paths: dict, message: str) -> None:
    (tmp_path / "my_shop_mod.py").write_text(MY_SHOP)
    (tmp_path / "broken_mod.py").write_text("1 / 0\n")
    with pytest.raises(ConfigError) as err:
        load_dialect(TargetSpec(dialect=dialect, paths=paths), base_dir=tmp_path)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_an_adapter_missing_protocol_methods_is_refused(tmp_path: Path) -> None:
    (tmp_path / "half_mod.py").write_text("from scenarios.shop import BaseShop\nclass Half(BaseShop):\n    def home(self): return None\n")
    with pytest.raises(ConfigError, match=r"target.dialect: half_mod:Half lacks cart, cart_add"):
        load_dialect(TargetSpec(dialect="half_mod:Half"), base_dir=tmp_path)


def test_feeder_rows_are_disjoint_across_users_and_workers(tmp_path: Path) -> None:
    csv = tmp_path / "users.csv"
    csv.write_text("username,password\n" + "".join(f"u{i},p{i}\n" for i in range(12)))
    rows = read_feeder(csv, columns=("username", "password"), field="target.feeders.users")
    workers = 3
    taken = [pick_row(rows, number=n, worker=w, workers=workers)["username"] for w in range(workers) for n in range(4)]
    assert sorted(taken) == sorted(f"u{i}" for i in range(12))  # 12 users on 3 workers: every row once
    check_feeders({"users": rows}, peak_users=12)
    with pytest.raises(ConfigError, match=r"target.feeders.users: the run needs 13 unique rows .* the feeder holds 12"):
        check_feeders({"users": rows}, peak_users=13)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user,pass\nu,p\n", "expected a CSV header with username, password; missing 'username'"),
        ("username,password\n", "no rows under the header"),
        ("username,password\nu1,\n", "line 2: expected a value in every column"),
        ("username,password\nu1,p1,extra\n", "line 2: expected a value in every column"),
    ],
)
def test_a_bad_feeder_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "f.csv"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_feeder(p, columns=("username", "password"), field="target.feeders.users")


def test_oscar_amounts() -> None:
    assert cents("12.99") == 1299 and cents("0.00") == 0 and cents("1") == 100
    assert cents("-1.00") is None and cents("NaN") is None and cents(None) is None and cents("abc") is None


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "peakload.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_writes_against_a_real_shop_that_does_not_isolate_are_refused(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "version: peakload/v1\nname: p\nslo: null\nshape: {stages: [{kind: steady, duration: 5s, users: 1}]}\n"
        "target: {dialect: oscar, allow: [shop.example]}\n"
    )
    res = _run("run", "--profile", str(profile), "--target", "http://shop.example", "--results", str(tmp_path / "r"))
    assert res.returncode == 2, res.stderr
    assert "does not isolate test traffic" in res.stderr and "--accept-real-orders" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert not (tmp_path / "r").exists()  # nothing written


def test_a_feeder_too_small_for_the_peak_is_refused_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("username,password\nu1,p1\nu2,p2\n")
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "version: peakload/v1\nname: p\nslo: null\nshape: {stages: [{kind: steady, duration: 5s, users: 5}]}\n"
        "target: {feeders: {users: users.csv}}\n"
    )
    res = _run("run", "--profile", str(profile), "--results", str(tmp_path / "r"))
    assert res.returncode == 2, res.stderr
    assert "target.feeders.users: the run needs 5 unique rows" in res.stderr and "holds 2" in res.stderr
    assert not (tmp_path / "r").exists()


USER_ADAPTER = '''
"""A user's adapter, written from docs/adapters.md: the storefront's routes, but this platform has no payment step."""
from peakload.core.steps import STEPS
from scenarios.client import ShopClient


class NoPayShop(ShopClient):
    OFFERS = frozenset(STEPS) - {"pay"}
'''


def test_a_users_own_adapter_runs_the_full_journey(tmp_path: Path) -> None:
    (tmp_path / "nopay_shop.py").write_text(USER_ADAPTER)
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "version: peakload/v1\nname: own-adapter\nslo: " + str(REPO / "profiles" / "slo.yaml") + "\nseed: 3\n"
        "shape: {stages: [{kind: ramp, duration: 2s, users: 8}, {kind: steady, duration: 8s, users: 8}]}\n"
        "users: {shopper: 3, flash_buyer: 1}\nflash_sale: {sku: FLASH-0001, at: 5s}\n"
        "target: {dialect: 'nopay_shop:NoPayShop'}\n"
        "journey: {think_time: {min: 0.05, max: 0.2}, ratios: {view_to_cart: 0.8, cart_to_checkout: 0.9}}\n"
        "thresholds: {all: [error_ratio < 1%], business: [oversold == 0]}\n"
    )
    res = _run("run", "--profile", str(profile), "--results", str(tmp_path / "r"), "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr
    (run,) = (tmp_path / "r").iterdir()
    s = json.loads((run / "summary.json").read_text())
    assert s["dialect"] == "nopay_shop:NoPayShop" and s["not_offered"] == ["pay"]
    assert s["isolated"] is True and s["isolation"].startswith("confirmed: one tagged probe order counted as shadow")
    assert s["steps"]["checkout"]["requests"] > 0 and s["steps"]["flash_checkout"]["requests"] > 0
    assert "pay" not in s["steps"] and s["business"]["payments_success"] == 0
    assert s["business"]["orders"] > 0 and s["reconciliation"]["orders_created"] == s["business"]["orders"]
    pay = [t for t in s["thresholds"] if t["scope"] == "step:pay"]
    assert pay and all(t["passed"] is None and "not offered" in t["message"] for t in pay)


def test_adapter_check_passes_on_the_embedded_storefront() -> None:
    res = _run("adapter", "check", "--profile", "profiles/smoke.yaml")
    assert res.returncode == 0, res.stdout + res.stderr
    rows = {line.split()[0]: line for line in res.stdout.splitlines()[2:] if line.strip() and not line.startswith("dialect")}
    for step in [s for s in STEPS if s != "flash_checkout"]:  # flash_checkout is "not checked" (it would take stock)
        assert rows[step].rstrip().endswith(" ok"), rows[step]
    assert "every offered step answered as expected" in res.stdout


def test_isolation_that_does_not_hold_is_reported_not_assumed(tmp_path: Path) -> None:
    # the shop tags X-Peakload-Run; this profile sends another header, so its orders land as real ones
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "version: peakload/v1\nname: untagged\nslo: null\n"
        "shape: {stages: [{kind: steady, duration: 3s, users: 1}]}\n"
        "target: {run_header: X-Not-The-Shops}\nthresholds: {all: [error_ratio < 1%]}\n"
    )
    res = _run("run", "--profile", str(profile), "--results", str(tmp_path / "r"), "--quiet")
    (run,) = (tmp_path / "r").iterdir()
    s = json.loads((run / "summary.json").read_text())
    assert s["isolated"] is False, s["isolation"]
    assert "test traffic is NOT isolated" in s["isolation"] and "real orders 0 -> 1" in s["isolation"]
    assert "NOT isolated" in (run / "summary.md").read_text()
    assert res.returncode in (0, 1, 3)


MISNAMED = """
from scenarios.client import ShopClient


class Misnamed(ShopClient):
    _STEP_OF = {**ShopClient._STEP_OF, "home": "search"}  # the first screen's request filed under the wrong step
"""


def test_adapter_check_fails_a_step_whose_requests_carry_another_step(tmp_path: Path) -> None:
    (tmp_path / "misnamed_mod.py").write_text(MISNAMED)
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "version: peakload/v1\nname: misnamed\nslo: null\nshape: {stages: [{kind: steady, duration: 5s, users: 1}]}\n"
        "target: {dialect: 'misnamed_mod:Misnamed'}\n"
    )
    res = _run("adapter", "check", "--profile", str(profile))
    assert res.returncode == 1, res.stdout + res.stderr
    rows = {line.split()[0]: line for line in res.stdout.splitlines()[2:] if line.strip() and not line.startswith("dialect")}
    assert "FAIL: GET /api/home was not named step 'home'" in rows["home"]
    assert rows["search"].rstrip().endswith(" ok")
    assert "1 step(s) failed: home" in res.stdout
