"""The small "site" a backup drill runs on: one PostgreSQL primary archiving to two repos, s3rver, gateway, storefront.

Usage::

    site = DrillSite.create(Path(".peakload/drill/20261126T030000Z"))
    site.setup()                 # s3 + pgbackrest config + initdb (archiving on) + stanza-create
    site.start_shop()            # gateway + storefront (seeds the DB)
    ...
    site.teardown()              # every process of the site stopped

It is separate from the chaos platform so a drill can wipe its data dir and
repo1 without touching anything else.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from chaos import backup as bk
from chaos.platform import postgres as pg
from chaos.platform.layout import check_state_dir
from chaos.platform.procs import (
    free_ports,
    is_our_program,
    processes_under,
    spawn,
    stop_named,
    stop_pid,
    wait_http,
    wait_port,
)
from chaos.platform.services import python_env

__all__ = ["DrillSite", "manifest", "MANIFEST_SQL_LIMIT"]

MANIFEST_SQL_LIMIT = 64  # tables; the storefront has ~10


def manifest(node: pg.PgNode, *, dbname: str) -> dict[str, dict[str, object]]:
    """Row count and an order-independent md5 of every table in ``public``, in one statement (one snapshot).

    Usage: ``manifest(node, dbname="shop") == {"orders": {"rows": 12, "md5": "..."}, ...}``
    """
    tables = pg.psql(node, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", dbname=dbname).split()
    if not tables:
        return {}
    parts = [
        f"SELECT '{t}' AS t, count(*) AS n, md5(coalesce(string_agg(md5(x::text), '' ORDER BY md5(x::text)), ''))"
        f' AS h FROM public."{t}" x'
        for t in tables[:MANIFEST_SQL_LIMIT]
    ]
    out = pg.psql(node, " UNION ALL ".join(parts), dbname=dbname)
    result: dict[str, dict[str, object]] = {}
    for line in out.splitlines():
        t, n, h = line.split("|")
        result[t] = {"rows": int(n), "md5": h}
    return result


@dataclass
class DrillSite:
    """Files, ports and processes of one drill run."""

    root: Path
    pg_port: int
    s3_port: int
    gateway_port: int
    shop_port: int
    app_password: str = "drill-shop-pw"
    app_user: str = "shop"
    app_db: str = "shop"
    seed_skus: int = 500
    seed_users: int = 20

    @classmethod
    def create(cls, root: Path, *, seed_skus: int = 500) -> DrillSite:
        """A fresh site dir with free ports (the dir must not hold a previous site)."""
        root = Path(root).resolve()
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        check_state_dir(root)
        a, b, c, d = free_ports(4)
        site = cls(root=root, pg_port=a, s3_port=b, gateway_port=c, shop_port=d, seed_skus=seed_skus)
        (root / "site.json").write_text(json.dumps({"pg": a, "s3": b, "gateway": c, "shop": d}))
        return site

    @property
    def node(self) -> pg.PgNode:
        return pg.PgNode(
            name="site",
            data_dir=self.root / "live" / "pgdata",
            port=self.pg_port,
            socket_dir=self.root / "live" / "run",
            log=self.root / "logs" / "postgresql.log",
        )

    @property
    def backup(self) -> bk.BackupSite:
        return bk.BackupSite.under(self.root, pg=self.node, s3_port=self.s3_port)

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def shop_url(self) -> str:
        return f"http://127.0.0.1:{self.shop_port}"

    def db_url(self) -> str:
        return f"postgresql://{self.app_user}:{self.app_password}@127.0.0.1:{self.pg_port}/{self.app_db}"

    def setup(self, *, archive_timeout_s: int = 2) -> None:
        """s3rver, pgbackrest.conf, initdb with archiving to both repos (1 MB WAL segments), stanza-create."""
        bk.start_s3(self.backup)
        bk.write_config(self.backup)
        pg.init_primary(
            self.node,
            app_user=self.app_user,
            app_password=self.app_password,
            app_db=self.app_db,
            settings=bk.archive_settings(self.backup, archive_timeout_s=archive_timeout_s),
            wal_segsize_mb=1,
        )
        bk.pgbackrest(self.backup, "stanza-create")

    def start_gateway(self) -> int:
        pid = spawn(
            "gateway",
            [sys.executable, "-m", "storefront", "gateway", "--host", "127.0.0.1", "--port", str(self.gateway_port), "--failure-rate", "0"],
            pid_dir=self.run_dir,
            log=self.root / "logs" / "gateway.log",
            cwd=self.root,
            env=python_env(),
        )
        wait_port(self.gateway_port, pid=pid, what="payment gateway", timeout=30)
        return pid

    def start_storefront(self, *, timeout: float = 90.0) -> int:
        """One storefront on the site's database (it seeds an empty one)."""
        argv = [
            sys.executable,
            "-m",
            "storefront",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.shop_port),
            "--db",
            self.db_url(),
            "--gateway-url",
            f"http://127.0.0.1:{self.gateway_port}",
            "--skus",
            str(self.seed_skus),
            "--users",
            str(self.seed_users),
            "--flash-skus",
            "1",
            "--password-iterations",
            "1000",
        ]
        pid = spawn("storefront", argv, pid_dir=self.run_dir, log=self.root / "logs" / "storefront.log", cwd=self.root, env=python_env())
        wait_http(f"{self.shop_url}/healthz", pid=pid, what="storefront", timeout=timeout)
        return pid

    def kill_storefront(self) -> None:
        import signal

        from chaos.platform.procs import pid_under, read_pid

        pid = read_pid(self.run_dir, "storefront")
        if pid_under(pid, self.root):
            stop_pid(pid, sig=signal.SIGKILL, timeout=5)

    def teardown(self) -> list[str]:
        """Stop every process of the site; returns leftovers that had to be killed by pid."""
        for name in ("storefront", "gateway"):
            stop_named(self.run_dir, name, timeout=10)
        with contextlib.suppress(Exception):
            pg.stop(self.node, mode="immediate")
        bk.stop_s3(self.backup)
        left = []
        for proc in processes_under(self.root):
            if not is_our_program(proc):
                continue
            left.append(f"{proc.pid}:{proc.name()}")
            stop_pid(proc.pid, timeout=5)
        return left

    def wipe(self) -> None:
        """Delete the site dir (after teardown)."""
        shutil.rmtree(self.root, ignore_errors=True)
