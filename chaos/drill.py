"""The 3-2-1 backup drill and the corruption drill (pgBackRest 2.45, repo1 posix, repo2 S3).

Usage::

    report = run_backup_drill(Path(".peakload/drill"), results_dir=Path("results/drill-1"))
    print(report.summary()); raise SystemExit(report.exit_code)

    bad = run_corruption_drill(Path(".peakload/drill"))   # must come back FAILED: verify caught it

Backup drill, in order: a fresh site (PostgreSQL archiving every WAL segment
to both repos, s3rver over TLS, gateway, storefront) → a canary shopper
places orders and logs each acknowledged one → full backups to repo1 and
repo2 while it writes → 3-2-1 policy check from ``pgbackrest info`` → the
canary pauses, a named restore point and a manifest (row counts + md5 per
table) are taken, it resumes → disaster: PostgreSQL and the storefront are
killed, the data dir AND repo1 are deleted → restore from repo2 alone to the
restore point (paused), manifest compared → recovery continues to the end
of the archived WAL and promotes → storefront started → RTO → RPO from the
canary log → smoke calls → ``verify --repo=2``.

Honest limits: repo1 is another directory tree, usually on the same disk;
repo2 is s3rver on loopback. Media are counted by device (``st_dev`` of the
live data dir, repo1 and the S3 server's data dir) and an S3 endpoint on this
host is a *simulated* off-site copy (``chaos.media``), so on one machine the
3-2-1 policy is reported as "not met here: ..." beside the restore test.

Exit code: 0 when the restore from the off-site copy alone passed every check,
1 otherwise; the policy verdict counts only with ``require_policy=True`` (where
the repositories really are on other media and another host). The drill
refuses to run the disaster unless 3 copies exist (live + a good full backup
in each repository). WAL reaches the archive per segment (1 MB,
``archive_timeout`` 2 s), so commits acknowledged in the last seconds before
the disaster can be lost: that is the RPO this drill measures, not a bug it hides.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from chaos import backup as bk
from chaos.canary import CanaryWriter, compute_rpo, read_acks
from chaos.drill_report import Check, DrillReport
from chaos.drill_site import DrillSite, manifest
from chaos.events import EventLog
from chaos.media import Copy, local_copy, media_count, policy_321, s3_copy
from chaos.platform import postgres as pg
from chaos.platform.procs import http_get, http_post

__all__ = ["run_backup_drill", "run_corruption_drill", "COPIES_CHECK", "DrillReport", "Check"]

RESTORE_POINT = "peakload-drill-manifest"
COPIES_CHECK = "3 copies before the disaster"


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _copies(site: DrillSite, info: dict[int, list[dict]]) -> list[Copy]:
    """The live data dir plus each repository that holds a good full backup, located on their devices."""

    def good(key: int) -> bool:
        return any(not b.get("error") and b.get("type") == "full" for b in info.get(key, []))

    bsite = site.backup
    copies = [local_copy("live", site.node.data_dir, kind="live")]
    if good(1):
        copies.append(local_copy("repo1", bsite.repo1))
    if good(2):
        copies.append(s3_copy("repo2", endpoint=bk.S3_ENDPOINT, port=bsite.s3_port, data_dir=bsite.s3_dir))
    return copies


def _present_orders(node: pg.PgNode, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        quoted = ",".join("'" + x.replace("'", "''") + "'" for x in chunk)
        out = pg.psql(node, f"SELECT id FROM orders WHERE id IN ({quoted})", dbname="shop")
        found.update(out.split())
    return found


def _wait_sql(node: pg.PgNode, sql: str, want: str, *, timeout: float, dbname: str = "postgres") -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pg.psql(node, sql, dbname=dbname, timeout=5) == want:
                return True
        except RuntimeError:
            pass
        time.sleep(0.1)
    return False


def _drop_recovery_target(node: pg.PgNode) -> None:
    auto = node.data_dir / "postgresql.auto.conf"
    keep = [ln for ln in auto.read_text().splitlines() if not ln.strip().startswith("recovery_target")]
    auto.write_text("\n".join(keep) + "\n")


def _smoke(base: str) -> tuple[bool, str]:
    """healthz, home, a product, login, an order and reading it back."""
    import json

    steps = []
    code, _ = http_get(base + "/healthz")
    steps.append(("healthz", code == 200, code))
    code, body = http_get(base + "/api/home")
    steps.append(("home", code == 200, code))
    code, body = http_get(base + "/api/categories/1/products?page=1&size=5")
    sku = json.loads(body)["items"][0]["sku"] if code == 200 else "SKU-000001"
    code, _ = http_get(base + f"/api/products/{sku}")
    steps.append(("product", code == 200, code))
    login = json.dumps({"username": "user00002", "password": "peakload"}).encode()
    code, body = http_post(base + "/api/sessions", login, headers={"Content-Type": "application/json"})
    token = json.loads(body).get("token") if code == 200 else None
    steps.append(("login", token is not None, code))
    hdr = {"Content-Type": "application/json", "Authorization": f"Bearer {token}", "Idempotency-Key": f"smoke-{_stamp()}"}
    code, body = http_post(
        base + "/api/orders", json.dumps({"address": {"city": "Hangzhou"}, "items": [{"sku": sku, "quantity": 1}]}).encode(), headers=hdr
    )
    oid = json.loads(body).get("order_id") if code == 201 else None
    steps.append(("order", oid is not None, code))
    if oid:
        import urllib.request

        req = urllib.request.Request(base + f"/api/orders/{oid}", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 - loopback
                code = r.status
        except OSError as exc:
            code = getattr(exc, "code", 0)
        steps.append(("read order", code == 200, code))
    ok = all(s[1] for s in steps)
    return ok, ", ".join(f"{n} {'ok' if good else f'FAILED ({c})'}" for n, good, c in steps)


def run_backup_drill(
    state_dir: Path,
    *,
    results_dir: Path | None = None,
    canary_rate: float = 8.0,
    writes_after_backup_s: float = 3.0,
    writes_after_manifest_s: float = 5.0,
    max_rpo_seconds: float = 10.0,
    seed_skus: int = 500,
    keep_site: bool = False,
    require_policy: bool = False,
) -> DrillReport:
    """Run the full 3-2-1 drill; the report passes only if every check does (see module doc for the policy).

    Usage: ``report = run_backup_drill(Path(".peakload/drill")); print(report.summary())``
    """
    report = DrillReport(name="backup-3-2-1", require_policy=require_policy)
    events = EventLog(results_dir)
    site = DrillSite.create(Path(state_dir) / f"backup-{_stamp()}", seed_skus=seed_skus)
    report.site_dir = str(site.root)
    node, bsite = site.node, site.backup
    canary: CanaryWriter | None = None
    mark = time.monotonic()

    def step(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        report.timings[name] = round(now - mark, 2)
        mark = now

    try:
        events.write("drill-start", detail="backup-3-2-1")
        site.setup()
        site.start_gateway()
        site.start_storefront()
        step("setup")
        canary = CanaryWriter(base_url=site.shop_url, log=site.root / "canary.jsonl", rate=canary_rate, max_seconds=300)
        canary.start()
        if not canary.wait_acks(3, timeout=20):
            raise RuntimeError(f"the canary could not place orders: {canary.errors}")
        for repo in (1, 2):
            bk.pgbackrest(bsite, "backup", "--type=full", repo=repo)
            events.write("backup-done", detail=f"full backup to repo{repo}")
        step("backups")
        info = bk.backup_info(bsite)
        report.facts["backups"] = {f"repo{k}": [b["label"] for b in v] for k, v in info.items()}
        copies = _copies(site, info)
        report.policy = policy_321(copies)
        report.facts["media"] = {"copies": [c.to_dict() for c in copies], "media": media_count(copies), "policy": report.policy.detail}
        events.write("policy-321", detail=report.policy.detail)
        three = report.check(COPIES_CHECK, len(copies) >= 3, ", ".join(f"{c.name} ({c.kind} at {c.where})" for c in copies))
        if not three.passed:
            raise RuntimeError("refusing to run the disaster: fewer than 3 copies (see the copies check)")
        canary.wait_acks(len(canary.acked()) + int(writes_after_backup_s * canary_rate * 0.5), timeout=writes_after_backup_s)

        canary.pause()
        lsn = pg.psql(node, f"SELECT pg_create_restore_point('{RESTORE_POINT}')")
        before = manifest(node, dbname=site.app_db)
        acked_at_manifest = canary.acked()
        canary.resume()
        report.facts["manifest"] = {
            "restore_point": RESTORE_POINT,
            "lsn": lsn,
            "tables": before,
            "last_acked_order": acked_at_manifest[-1].id if acked_at_manifest else None,
            "last_acked_t": acked_at_manifest[-1].t if acked_at_manifest else None,
        }
        events.write("manifest", detail=f"{len(before)} tables at restore point {lsn}")
        # The manifest check is about restoring exactly; archive lag is what the RPO check measures.
        t_arch = time.monotonic()
        archived = _wait_sql(node, f"SELECT last_archived_wal >= pg_walfile_name('{lsn}') FROM pg_stat_archiver", "t", timeout=30)
        report.facts["manifest_archived_after_s"] = round(time.monotonic() - t_arch, 2) if archived else None
        canary.wait_acks(len(canary.acked()) + int(writes_after_manifest_s * canary_rate * 0.5), timeout=writes_after_manifest_s)
        step("writes")

        # ---- disaster: the whole site is gone except the off-site copy
        t_disaster = time.time()
        events.write("disaster", detail="kill -9 PostgreSQL and storefront; delete data dir and repo1")
        pg.kill(node)
        site.kill_storefront()
        canary.stop()
        shutil.rmtree(node.data_dir)
        shutil.rmtree(bsite.repo1)
        report.facts["disaster"] = {"t": t_disaster, "deleted": [str(node.data_dir), str(bsite.repo1)]}

        # ---- restore from repo2 alone, first to the manifest's restore point
        bk.restore(bsite, repo=2, target_name=RESTORE_POINT, pause=True)
        step("restore")
        pg.start(node, timeout=120)
        paused = _wait_sql(node, "SELECT pg_get_wal_replay_pause_state()", "paused", timeout=60)
        after = manifest(node, dbname=site.app_db) if paused else {}
        diff = sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))
        report.check(
            "manifest at the restore point",
            paused and not diff,
            f"{len(before)} tables, row counts and md5 equal"
            if paused and not diff
            else (f"differs in {diff}" if paused else "recovery never paused at the restore point"),
        )
        # ---- then on to the end of the archived WAL, promote
        pg.stop(node, mode="fast")
        _drop_recovery_target(node)
        pg.start(node, timeout=120)
        promoted = _wait_sql(node, "SELECT pg_is_in_recovery()", "f", timeout=60)
        pg.psql(node, "ALTER SYSTEM RESET restore_command")
        pg.psql(node, "SELECT pg_reload_conf()")
        report.check("recovery to the end of the archive", promoted, "promoted to primary" if promoted else "still in recovery after 60 s")
        step("recovery")
        site.start_storefront()
        t_serving = time.time()
        report.rto_seconds = round(t_serving - t_disaster, 2)
        events.write("serving", detail=f"storefront /healthz 200 on the restored database (RTO {report.rto_seconds}s)")
        step("storefront")

        acks = read_acks(site.root / "canary.jsonl")
        present = _present_orders(node, [a.id for a in acks])
        rpo = compute_rpo(acks, present)
        report.rpo = rpo.to_dict()
        missing_before_manifest = [a.id for a in acked_at_manifest if a.id not in present]
        report.check(
            "acknowledged orders up to the manifest restored",
            not missing_before_manifest,
            f"{len(acked_at_manifest)} of {len(acked_at_manifest)} present"
            if not missing_before_manifest
            else f"{len(missing_before_manifest)} missing, e.g. {missing_before_manifest[:3]}",
        )
        rpo_ok = rpo.rpo_seconds is not None and rpo.rpo_seconds <= max_rpo_seconds
        report.check(
            f"RPO within {max_rpo_seconds:g} s", rpo_ok, f"{rpo.lost} of {rpo.acked} acknowledged orders lost, {rpo.rpo_seconds} s"
        )
        ok, detail = _smoke(site.shop_url)
        report.check("smoke calls on the restored shop", ok, detail)

        # Re-protect: repo1 comes back (new medium), so archiving to both repos works again.
        bk.pgbackrest(bsite, "stanza-create")
        pg.psql(node, "SELECT pg_switch_wal()")
        v = bk.verify(bsite, repo=2)
        report.facts["verify_repo2"] = v.summary()
        report.check("pgbackrest verify --repo=2", v.ok, v.summary())
        step("checks")
        events.write("drill-end", detail="passed" if report.passed else "failed")
    except Exception as exc:  # noqa: BLE001 - the report carries the failure, teardown always runs
        report.error = f"{type(exc).__name__}: {exc}"
        events.write("drill-error", detail=report.error)
    finally:
        if canary is not None:
            canary.stop()
        left = site.teardown()
        if left:
            report.facts["leftovers_killed"] = left
        report.finished = time.time()
        report.facts["events"] = events.events
        _save(report, results_dir, site.root / "canary.jsonl")
        if not keep_site and report.passed:
            site.wipe()  # a failed drill keeps its site for inspection
    return report


def _save(report: DrillReport, results_dir: Path | None, canary_log: Path | None = None) -> None:
    """Keep the evidence next to the events: report, manifest, canary log (the site dir may be wiped)."""
    if results_dir is None:
        return
    import json

    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{report.name}.json").write_text(report.to_json())
    if "manifest" in report.facts:
        (results_dir / "manifest.json").write_text(json.dumps(report.facts["manifest"], indent=2))
    if canary_log is not None and canary_log.exists():
        shutil.copyfile(canary_log, results_dir / "canary.jsonl")


def _corrupt_one_file(site: DrillSite, repo: int) -> Path:
    """Flip bytes in the middle of the largest backed-up relation file of the newest backup in ``repo``."""
    bsite = site.backup
    root = bsite.repo1 / "backup" if repo == 1 else bsite.s3_dir
    files = [
        p
        for p in root.rglob("*")
        if p.is_file() and "/pg_data/base/" in str(p) and not p.name.endswith((".json", "._S3rver_metadata.json"))
    ]
    if not files:
        raise RuntimeError(f"no backed-up data files found under {root}")
    newest = max(files, key=lambda p: (p.stat().st_mtime, p.stat().st_size))
    label_dir = next(parent for parent in newest.parents if parent.parent.name == bsite.stanza)
    target = max((p for p in files if label_dir in p.parents), key=lambda p: p.stat().st_size)
    data = bytearray(target.read_bytes())
    mid = len(data) // 2
    for i in range(mid, min(mid + 16, len(data))):
        data[i] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def run_corruption_drill(state_dir: Path, *, repo: int = 1, results_dir: Path | None = None, keep_site: bool = False) -> DrillReport:
    """Back up, corrupt one file in one repository, and show that verification (and restore) catch it.

    The report comes back FAILED on purpose: the repository's integrity check
    fails; ``facts["corruption_detected"]`` says whether verify named it.

    Usage: ``report = run_corruption_drill(Path(".peakload/drill")); assert not report.passed``
    """
    if repo not in (1, 2):
        raise ValueError(f"repo must be 1 (posix) or 2 (s3), got {repo}")
    report = DrillReport(name=f"backup-corruption-repo{repo}")
    events = EventLog(results_dir)
    site = DrillSite.create(Path(state_dir) / f"corrupt-{_stamp()}")
    report.site_dir = str(site.root)
    bsite = site.backup
    try:
        events.write("drill-start", detail=report.name)
        site.setup()
        pg.psql(
            site.node, "CREATE TABLE drill_data AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g", dbname=site.app_db
        )
        bk.pgbackrest(bsite, "backup", "--type=full", repo=repo)
        pg.psql(site.node, "SELECT pg_switch_wal()")
        before = bk.verify(bsite, repo=repo)
        baseline_ok = before.status == "ok" and not before.problems and bool(before.backups)
        report.check(f"baseline verify of repo{repo}", baseline_ok, before.summary())
        if not baseline_ok:
            raise RuntimeError("the repository was not clean before corruption; nothing to conclude")
        target = _corrupt_one_file(site, repo)
        report.facts["corrupted_file"] = str(target)
        events.write("corruption", detail=f"flipped 16 bytes in {target}")
        after = bk.verify(bsite, repo=repo)
        report.facts["verify_after"] = after.summary()
        detected = after.exit_code != 0 or after.status != "ok" or bool(after.problems)
        report.facts["corruption_detected"] = detected
        report.check(f"repo{repo} integrity (pgbackrest verify)", not detected, after.summary())
        scratch = site.root / "restore-test"
        ok, detail = _try_restore(site, repo, scratch)
        report.check(f"restore from repo{repo}", ok, detail)
        events.write("drill-end", detail="corruption detected" if detected else "corruption NOT detected")
    except Exception as exc:  # noqa: BLE001 - the report carries the failure, teardown always runs
        report.error = f"{type(exc).__name__}: {exc}"
        events.write("drill-error", detail=report.error)
    finally:
        site.teardown()
        report.finished = time.time()
        report.facts["events"] = events.events
        _save(report, results_dir)
        if not keep_site:
            site.wipe()
    return report


def _try_restore(site: DrillSite, repo: int, target: Path) -> tuple[bool, str]:
    from chaos.platform.postgres import chown_postgres

    target.mkdir(parents=True, mode=0o700, exist_ok=True)
    chown_postgres(target)
    try:
        bk.pgbackrest(site.backup, "restore", f"--pg1-path={target}", repo=repo, timeout=120)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if "ERROR" in ln or "Error" in ln]
        return False, "refused: " + (lines[0] if lines else str(exc).splitlines()[-1])[:300]
    return True, f"restored into {target}"
