"""pgBackRest 2.45 with two repositories: repo1 posix (another directory tree), repo2 S3 (s3rver over TLS).

Usage::

    site = BackupSite.under(Path(".peakload/drill"), pg=node, s3_port=9443)
    start_s3(site)                       # s3rver with a self-signed cert made here
    write_config(site)                   # pgbackrest.conf, owned by postgres
    pgbackrest(site, "stanza-create")
    pgbackrest(site, "backup", "--type=full", repo=2)
    info = backup_info(site)             # per-repo backups from `info --output=json`
    result = verify(site, repo=2)        # parsed `verify` output ("total WAL checked", errors)

The S3 server is s3rver (npm, installed into ``chaos/vendor``); pgBackRest only
speaks HTTPS to S3, so the cert is generated per site. Everything pgBackRest
runs as the ``postgres`` OS user and always gets ``--config`` (else it reads
``/etc/pgbackrest.conf``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from chaos.platform.postgres import PgNode, chown_postgres
from chaos.platform.procs import (
    as_postgres,
    port_open,
    read_pid,
    run,
    spawn,
    stop_named,
    wait_port,
)

__all__ = [
    "S3RVER",
    "S3RVER_CANDIDATES",
    "S3_ENDPOINT",
    "BackupSite",
    "VerifyResult",
    "s3rver_path",
    "make_cert",
    "start_s3",
    "stop_s3",
    "write_config",
    "archive_settings",
    "pgbackrest",
    "backup_info",
    "verify",
    "restore",
]

_REPO = Path(__file__).resolve().parents[1]
# Where s3rver may be installed (first hit wins): $PEAKLOAD_S3RVER, the Makefile's .peakload/node,
# chaos/vendor, then PATH.
S3RVER_CANDIDATES = (
    _REPO / ".peakload" / "node" / "node_modules" / ".bin" / "s3rver",
    _REPO / "chaos" / "vendor" / "node_modules" / ".bin" / "s3rver",
)
S3RVER = S3RVER_CANDIDATES[0]
S3_KEY = "S3RVER"  # s3rver's fixed access key and secret (signatures are checked)
BUCKET = "offsite"
S3_ENDPOINT = "127.0.0.1"  # s3rver runs on this host: the "off-site" copy is simulated (see chaos.media)


def s3rver_path() -> Path:
    """The s3rver executable; raises with the install command when it is missing."""
    env = os.environ.get("PEAKLOAD_S3RVER")
    if env:
        if not Path(env).exists():
            raise FileNotFoundError(f"PEAKLOAD_S3RVER={env} does not exist")
        return Path(env)
    for path in S3RVER_CANDIDATES:
        if path.exists():
            return path
    found = shutil.which("s3rver")
    if found:
        return Path(found)
    raise FileNotFoundError(
        "s3rver not found; install it with `make s3rver` (npm install s3rver@3.7.1 into .peakload/node) or set PEAKLOAD_S3RVER"
    )


@dataclass(frozen=True)
class BackupSite:
    """One database with its two backup repositories and the pgBackRest files."""

    root: Path
    pg: PgNode
    s3_port: int
    stanza: str = "peakload"
    repo1: Path = field(default=Path())
    s3_dir: Path = field(default=Path())

    @classmethod
    def under(cls, root: Path, *, pg: PgNode, s3_port: int, stanza: str = "peakload") -> BackupSite:
        """Default layout: repo1 in ``root/media-posix`` (a tree apart from the data dir), S3 data in ``root/offsite-s3``."""
        root = Path(root).resolve()
        return cls(root=root, pg=pg, s3_port=s3_port, stanza=stanza, repo1=root / "media-posix" / "repo1", s3_dir=root / "offsite-s3")

    @property
    def conf(self) -> Path:
        return self.root / "pgbackrest" / "pgbackrest.conf"

    @property
    def work(self) -> Path:
        return self.root / "pgbackrest"

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"


def make_cert(site: BackupSite) -> tuple[Path, Path]:
    """Self-signed TLS key + cert for 127.0.0.1 (made once per site)."""
    site.tls.mkdir(parents=True, exist_ok=True)
    key, cert = site.tls / "key.pem", site.tls / "cert.pem"
    if not (key.exists() and cert.exists()):
        run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "7",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ]
        )
    return key, cert


def start_s3(site: BackupSite) -> int:
    """Start s3rver over TLS with the ``offsite`` bucket, path-style; idempotent."""
    pid = read_pid(site.run_dir, "s3rver")
    if pid and port_open(site.s3_port):
        return pid
    key, cert = make_cert(site)
    site.s3_dir.mkdir(parents=True, exist_ok=True)
    pid = spawn(
        "s3rver",
        [
            str(s3rver_path()),
            "-d",
            str(site.s3_dir),
            "-a",
            S3_ENDPOINT,
            "-p",
            str(site.s3_port),
            "--key",
            str(key),
            "--cert",
            str(cert),
            "--no-vhost-buckets",
            "--configure-bucket",
            BUCKET,
            "--silent",
        ],
        pid_dir=site.run_dir,
        log=site.root / "logs" / "s3rver.log",
        cwd=site.s3_dir,
    )
    wait_port(site.s3_port, pid=pid, what="s3rver", timeout=30)
    return pid


def stop_s3(site: BackupSite) -> None:
    """Stop the S3 server (its data stays)."""
    stop_named(site.run_dir, "s3rver")


def archive_settings(site: BackupSite, *, archive_timeout_s: int = 2) -> dict[str, str]:
    """postgresql.conf settings that archive every WAL segment to both repositories."""
    cmd = f"pgbackrest --config={site.conf} --stanza={site.stanza} archive-push %p"
    return {"archive_mode": "on", "archive_command": f"'{cmd}'", "archive_timeout": f"{archive_timeout_s}s"}


def write_config(site: BackupSite) -> Path:
    """pgbackrest.conf with repo1 (posix) and repo2 (S3, TLS without verification, path-style)."""
    for d in (site.work / "log", site.work / "lock", site.work / "spool", site.repo1):
        d.mkdir(parents=True, exist_ok=True)
    site.conf.write_text(f"""# generated by chaos.backup — do not edit
[global]
log-path={site.work / "log"}
lock-path={site.work / "lock"}
spool-path={site.work / "spool"}
log-level-console=warn
log-level-file=info
compress-type=lz4
start-fast=y
process-max=4
archive-timeout=30
repo1-path={site.repo1}
repo1-retention-full=2
repo2-type=s3
repo2-path=/{site.stanza}-repo
repo2-s3-bucket={BUCKET}
repo2-s3-endpoint={S3_ENDPOINT}
repo2-storage-port={site.s3_port}
repo2-s3-region=us-east-1
repo2-s3-key={S3_KEY}
repo2-s3-key-secret={S3_KEY}
repo2-s3-uri-style=path
repo2-storage-verify-tls=n
repo2-retention-full=2

[{site.stanza}]
pg1-path={site.pg.data_dir}
pg1-port={site.pg.port}
pg1-socket-path={site.pg.socket_dir}
pg1-user=postgres
""")
    os.chmod(site.conf, 0o640)
    chown_postgres(site.work)
    chown_postgres(site.repo1.parent)
    return site.conf


def pgbackrest(
    site: BackupSite,
    command: str,
    *args: str,
    repo: int | None = None,
    check: bool = True,
    timeout: float = 300.0,
    console_level: str = "warn",
) -> str:
    """Run one pgBackRest command as postgres with our config; return its stdout (stderr on failure in the error)."""
    argv = ["pgbackrest", f"--config={site.conf}", f"--stanza={site.stanza}", f"--log-level-console={console_level}"]
    if repo is not None:
        argv.append(f"--repo={repo}")
    proc = run(as_postgres([*argv, *args, command]), check=check, timeout=timeout)
    return proc.stdout + (proc.stderr if not check else "")


def backup_info(site: BackupSite) -> dict[int, list[dict]]:
    """Backups per repository key, from ``info --output=json`` (repos missing or failing give an empty list)."""
    out = pgbackrest(site, "info", "--output=json", check=False)
    try:
        data = json.loads(out[out.index("[") :]) if "[" in out else []
    except ValueError:
        return {}
    per_repo: dict[int, list[dict]] = {}
    for stanza in data:
        if stanza.get("name") != site.stanza:
            continue
        for repo in stanza.get("repo", []):
            per_repo.setdefault(int(repo["key"]), [])
        for b in stanza.get("backup", []):
            per_repo.setdefault(int(b["database"]["repo-key"]), []).append(b)
    return per_repo


@dataclass(frozen=True)
class VerifyResult:
    """What ``pgbackrest verify --output=text --verbose`` reported for one repository."""

    repo: int
    exit_code: int
    status: str  # "ok" or "error" as printed by verify
    wal_checked: int
    wal_valid: int
    files_checked: int
    files_valid: int
    backups: dict[str, str]  # label -> "valid" | "invalid" | ...
    problems: list[str]  # "archiveId 15-1: checksum invalid 1", "backup X: status invalid", ...
    output: str

    @property
    def ok(self) -> bool:
        """Exit 0, status ok, nothing invalid, every backup valid, and WAL actually checked.

        ``archiveId: none found`` (s3rver's listing quirk before a timeline
        history file exists) leaves ``wal_checked`` at 0 and is *not* ok.
        """
        return (
            self.exit_code == 0
            and self.status == "ok"
            and not self.problems
            and self.wal_checked > 0
            and bool(self.backups)
            and all(v == "valid" for v in self.backups.values())
        )

    def summary(self) -> str:
        backups = ", ".join(f"{k} {v}" for k, v in self.backups.items()) or "no backups"
        tail = f"; problems: {'; '.join(self.problems)}" if self.problems else ""
        return (
            f"repo{self.repo}: status {self.status}, WAL checked {self.wal_checked} (valid {self.wal_valid}), "
            f"backup files checked {self.files_checked} (valid {self.files_valid}), {backups}{tail}"
        )


_COUNTS = re.compile(r"missing: (\d+), checksum invalid: (\d+), size invalid: (\d+), other: (\d+)")


def _parse_verify(repo: int, code: int, text: str) -> VerifyResult:
    status, wal, wal_ok, files, files_ok = "missing", 0, 0, 0, 0
    backups: dict[str, str] = {}
    problems: list[str] = []
    where = ""
    for line in text.splitlines():
        ln = line.strip()
        if ln.startswith("status:"):
            status = ln.split(":", 1)[1].strip()
        elif ln.startswith("archiveId:"):
            where = "archiveId " + ln.split(",")[0].split(":", 1)[1].strip()
            if m := re.search(r"total WAL checked: (\d+), total valid WAL: (\d+)", ln):
                wal += int(m.group(1))
                wal_ok += int(m.group(2))
        elif ln.startswith("backup:"):
            m = re.match(
                r"backup: (\S+), status: ([^,]+)"
                r"(?:, total files checked: (\d+), total valid files: (\d+))?",
                ln,
            )
            if m:
                where = f"backup {m.group(1)}"
                backups[m.group(1)] = m.group(2).strip()
                files += int(m.group(3) or 0)
                files_ok += int(m.group(4) or 0)
                if m.group(2).strip() != "valid":
                    problems.append(f"{where}: status {m.group(2).strip()}")
        elif m := _COUNTS.search(ln):
            for label, n in zip(("missing", "checksum invalid", "size invalid", "other"), m.groups()):
                if int(n):
                    problems.append(f"{where}: {label} {n}")
        elif "ERROR" in ln:
            problems.append(ln)
    return VerifyResult(
        repo=repo,
        exit_code=code,
        status=status,
        wal_checked=wal,
        wal_valid=wal_ok,
        files_checked=files,
        files_valid=files_ok,
        backups=backups,
        problems=problems,
        output=text,
    )


def verify(site: BackupSite, *, repo: int, timeout: float = 300.0) -> VerifyResult:
    """Run ``verify --repo=N --output=text --verbose`` and parse it; the exit code alone is not trusted."""
    argv = [
        "pgbackrest",
        f"--config={site.conf}",
        f"--stanza={site.stanza}",
        "--log-level-console=warn",
        f"--repo={repo}",
        "--output=text",
        "--verbose",
        "verify",
    ]
    proc = run(as_postgres(argv), check=False, timeout=timeout)
    return _parse_verify(repo, proc.returncode, proc.stdout + proc.stderr)


def restore(site: BackupSite, *, repo: int, target_name: str | None = None, pause: bool = False, timeout: float = 300.0) -> None:
    """Restore into the (emptied, re-created) data dir from one repository; PITR to a named restore point if given."""
    if site.pg.data_dir.exists():
        shutil.rmtree(site.pg.data_dir)
    site.pg.data_dir.mkdir(parents=True, mode=0o700)
    chown_postgres(site.pg.data_dir)
    args = []
    if target_name:
        args += ["--type=name", f"--target={target_name}", f"--target-action={'pause' if pause else 'promote'}"]
    pgbackrest(site, "restore", *args, repo=repo, timeout=timeout)
