"""The full platform on loopback: up → healthy and serving → down leaves nothing running."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from chaos.platform import down, format_status, load_spec, shop_url, status, up
from chaos.platform.layout import Layout
from chaos.platform.procs import port_open, processes_under
from chaos.platform.services import have_exporters

pytestmark = pytest.mark.platform


def _get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, json.loads(resp.read())


def test_up_status_down_leaves_nothing_running(state_dir: Path) -> None:
    # The hook for dashboards/: rule files dropped into prometheus/rules/ are loaded by up.
    rules = Layout(state_dir).rules_dir
    rules.mkdir(parents=True)
    (rules / "test.yml").write_text("groups:\n- name: chaos-test\n  rules:\n  - record: chaos:up:sum\n    expr: sum(up)\n")
    health = up(state_dir, replicas=3)
    assert all(c.healthy for c in health), format_status(health)
    names = {c.name for c in health}
    assert {"pg0", "pg1", "redis", "gateway", "haproxy", "prometheus", "storefront-0", "storefront-2"} <= names
    roles = {c.name: c.detail for c in health}
    assert roles["pg0"].startswith("primary, 1 streaming")
    assert "streaming" in roles["pg1"]
    assert roles["haproxy"].startswith("3/3 replicas UP")

    spec = load_spec(Layout(state_dir))
    assert spec is not None
    code, home = _get(shop_url(spec) + "/api/home")
    assert code == 200 and home["categories"], "the shop serves its first screen through HAProxy"
    code, targets = _get(f"http://127.0.0.1:{spec.ports.prometheus}/api/v1/targets?state=active")
    up_jobs = {t["labels"]["job"] for t in targets["data"]["activeTargets"] if t["health"] == "up"}
    assert {"storefront", "haproxy", "prometheus", "faultproxy"} <= up_jobs
    if have_exporters():  # prometheus-postgres-exporter / prometheus-redis-exporter are optional packages
        assert {"postgres", "redis"} <= up_jobs
    code, loaded = _get(f"http://127.0.0.1:{spec.ports.prometheus}/api/v1/rules")
    assert "chaos-test" in [g["name"] for g in loaded["data"]["groups"]]

    # Idempotent: a second up keeps the same processes.
    pids = {c.name: c.pid for c in health}
    again = up(state_dir, replicas=3)
    assert {c.name: c.pid for c in again} == pids

    stopped = down(state_dir)
    assert "haproxy" in stopped and "pg0" in stopped
    assert processes_under(state_dir) == []
    ports = (spec.ports.haproxy, spec.ports.pg[0], spec.ports.redis, *spec.ports.storefront)
    assert not any(port_open(p) for p in ports)
    after = status(state_dir)
    assert not any(c.healthy for c in after if c.name in ("pg0", "haproxy", "storefront-0"))


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user (postgres)")
def test_up_refuses_a_state_dir_postgres_cannot_reach(tmp_path: Path) -> None:
    # pytest's own tmp_path is 0700 under root: PostgreSQL (running as postgres) could not use it.
    with pytest.raises(PermissionError, match="not searchable"):
        up(tmp_path / "platform")
