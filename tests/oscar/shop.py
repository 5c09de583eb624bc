"""Start and stop a real django-oscar test shop (``tests/oscar/project``) under gunicorn, from the stdlib alone.

The suite's venv has no Django: the shop runs in its own venv, ``<repo>/.peakload/oscar-venv``,
built from ``tests/oscar/requirements.txt`` by :func:`ensure_venv` (once; a stamp file keeps the
requirements' hash). :class:`OscarShop` migrates and seeds a database once per (project files,
requirements, seed options), keeps it as a template in ``.peakload/oscar-cache/``, copies it into
the work directory, starts ``gunicorn oscarshop.wsgi`` on a free loopback port and waits until
``GET /api/`` answers::

    with OscarShop(tmp_path, users=50) as shop:
        urllib.request.urlopen(shop.url + "/api/products/")

The API as this shop speaks it is written down in ``tests/oscar/API.md``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

__all__ = ["FLASH_SKU", "OscarShop", "OscarShopError", "ensure_venv", "repo_root"]

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "project"
FLASH_SKU = "FLASH-0001"  # the seed's flash-sale product (UPC and partner SKU)
_REQUIREMENTS = Path("tests") / "oscar" / "requirements.txt"
_STAMP = ".peakload-requirements.sha256"


class OscarShopError(RuntimeError):
    """The shop's venv, database or server could not be made ready (the message carries the log's tail)."""


def repo_root() -> Path:
    return HERE.parent.parent


def _sha256(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(len(chunk).to_bytes(8, "big"))
        h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock file: two pytest sessions (or ``make oscar-venv``) don't build the same thing at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no {path.name})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path.name} is empty)"


def _base_python() -> str:
    found = shutil.which("python3.11")
    if found:
        return found
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    raise OscarShopError("python3.11 not found: the Oscar test shop's venv needs Python 3.11")


def ensure_venv(root: Path | None = None, *, python: str | None = None, timeout: float = 1800.0) -> Path:
    """The Oscar venv's python, ``<root>/.peakload/oscar-venv/bin/python``; built when missing or stale.

    Stale means its stamp file does not hold the hash of ``tests/oscar/requirements.txt``: then
    the venv is made anew (``python3.11 -m venv`` + ``pip install -r``), so a pin removed from the
    list is gone from the venv too. When the stamp matches this returns at once.
    """
    root = Path(root or repo_root()).resolve()
    requirements = root / _REQUIREMENTS
    venv = root / ".peakload" / "oscar-venv"
    py = venv / "bin" / "python"
    digest = _sha256(requirements.read_bytes())

    def fresh() -> bool:
        try:
            return py.exists() and (venv / _STAMP).read_text().strip() == digest
        except OSError:
            return False

    if fresh():
        return py
    with _locked(root / ".peakload" / "oscar-venv.lock"):
        if fresh():
            return py
        shutil.rmtree(venv, ignore_errors=True)
        log = root / ".peakload" / "oscar-venv-install.log"
        with open(log, "wb") as out:
            try:
                for cmd in (
                    [python or _base_python(), "-m", "venv", str(venv)],
                    [str(py), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-r", str(requirements)],
                ):
                    out.write(f"$ {' '.join(cmd)}\n".encode())
                    out.flush()
                    subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=True, timeout=timeout, cwd=root)
            except (subprocess.SubprocessError, OSError) as exc:
                shutil.rmtree(venv, ignore_errors=True)
                raise OscarShopError(f"building {venv} failed ({exc}); {log}:\n{_tail(log)}") from exc
        (venv / _STAMP).write_text(digest + "\n")
    return py


def _project_digest(root: Path, *args: str) -> str:
    """Hash of everything the seeded database depends on: the project's sources, the pins, the seed options."""
    chunks = [(root / _REQUIREMENTS).read_bytes()]
    for path in sorted(PROJECT.rglob("*.py")):
        if "__pycache__" not in path.parts:
            chunks += [path.relative_to(PROJECT).as_posix().encode(), path.read_bytes()]
    chunks += [a.encode() for a in args]
    return _sha256(*chunks)[:20]


def _index_of(db_path: Path) -> Path:
    """The Whoosh search index that goes with a database file (``x.sqlite3`` -> ``x.whoosh``)."""
    return db_path.with_suffix(".whoosh")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM gunicorn's master if the test process dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class OscarShop:
    """A seeded django-oscar shop under gunicorn on 127.0.0.1; a context manager (start on enter, stop on exit).

    Attributes once started: ``url`` (``http://127.0.0.1:PORT``), ``port``, ``db_path`` (the live
    SQLite file, WAL mode), ``flash_sku``, ``python`` (the Oscar venv's), ``timings`` (seconds:
    ``venv``, ``database``, ``ready``, and whether the database came from the cache) and the logs
    ``setup_log``, ``access_log`` (one line per request, the last field its time in ms), ``error_log``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        products: int = 240,
        categories: int = 8,
        users: int = 400,
        flash_stock: int = 20,
        workers: int = 2,
        root: Path | None = None,
        python: Path | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        cache: bool = True,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.products, self.categories, self.users, self.flash_stock = products, categories, users, flash_stock
        self.workers = workers
        self.root = Path(root or repo_root()).resolve()
        self.python = Path(python) if python else None
        self.start_timeout, self.stop_timeout, self.cache = start_timeout, stop_timeout, cache
        self.flash_sku = FLASH_SKU
        self.db_path = self.workdir / "oscar.sqlite3"
        self.search_index = _index_of(self.db_path)
        self.media_root = self.workdir / "media"
        self.setup_log = self.workdir / "setup.log"
        self.access_log = self.workdir / "gunicorn-access.log"
        self.error_log = self.workdir / "gunicorn-error.log"
        self.port: int | None = None
        self.url = ""
        self.timings: dict[str, float | bool] = {}
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------ context manager

    def __enter__(self) -> OscarShop:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------ database

    def _env(self, db_path: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTHON"))}
        env.update(
            DJANGO_SETTINGS_MODULE="oscarshop.settings",
            OSCAR_DB_PATH=str(db_path),
            OSCAR_SEARCH_INDEX=str(_index_of(db_path)),
            OSCAR_MEDIA_ROOT=str(self.media_root),
            PYTHONDONTWRITEBYTECODE="1",  # no __pycache__ in the source tree
            PYTHONUNBUFFERED="1",
        )
        return env

    def _manage(self, db_path: Path, *args: str, timeout: float = 600.0) -> None:
        assert self.python is not None
        cmd = [str(self.python), "manage.py", *args]
        with open(self.setup_log, "ab") as out:
            out.write(f"$ {' '.join(cmd)}\n".encode())
            out.flush()
            try:
                subprocess.run(cmd, cwd=PROJECT, env=self._env(db_path), stdout=out, stderr=subprocess.STDOUT, check=True, timeout=timeout)
            except (subprocess.SubprocessError, OSError) as exc:
                raise OscarShopError(f"manage.py {' '.join(args)} failed ({exc}); {self.setup_log}:\n{_tail(self.setup_log)}") from exc

    def _seed_args(self) -> list[str]:
        return [
            f"--products={self.products}",
            f"--categories={self.categories}",
            f"--users={self.users}",
            f"--flash-stock={self.flash_stock}",
        ]

    def _build(self, target: Path) -> None:
        """Migrate and seed a new database at ``target`` and leave it as one self-contained file (no WAL)."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(_index_of(target), ignore_errors=True)
        self._manage(target, "migrate", "--no-input", "-v", "0")
        self._manage(target, "peakload_seed", *self._seed_args())
        con = sqlite3.connect(target)
        try:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.execute("PRAGMA journal_mode=DELETE")
        finally:
            con.close()

    def _prepare_db(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(self.search_index, ignore_errors=True)
        if not self.cache:
            self.timings["db_cached"] = False
            self._build(self.db_path)
            return
        cache_dir = self.root / ".peakload" / "oscar-cache"
        template = cache_dir / f"{_project_digest(self.root, *self._seed_args())}.sqlite3"
        self.timings["db_cached"] = template.exists()
        if not template.exists():
            with _locked(cache_dir / ".build.lock"):
                if not template.exists():
                    scratch = template.with_name(f"{template.stem}.{os.getpid()}.tmp")
                    try:
                        self._build(scratch)
                        shutil.rmtree(_index_of(template), ignore_errors=True)
                        os.replace(_index_of(scratch), _index_of(template))
                        os.replace(scratch, template)  # last: the template's presence says both are whole
                    finally:
                        scratch.unlink(missing_ok=True)
                        shutil.rmtree(_index_of(scratch), ignore_errors=True)
        shutil.copyfile(template, self.db_path)
        shutil.copytree(_index_of(template), self.search_index)

    # ------------------------------------------------------------ server

    def start(self) -> None:
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        if self.python is None:
            self.python = ensure_venv(self.root)
        t1 = time.monotonic()
        self._prepare_db()
        t2 = time.monotonic()
        for attempt in range(3):  # the free port can be taken between our probe and gunicorn's bind
            self._spawn(_free_port())
            try:
                self._wait_ready()
                break
            except OscarShopError:
                exited = self._proc is not None and self._proc.poll() is not None
                self.stop()
                if attempt == 2 or not exited or "in use" not in _tail(self.error_log):
                    raise
        self.timings.update(venv=round(t1 - t0, 2), database=round(t2 - t1, 2), ready=round(time.monotonic() - t2, 2))

    def _spawn(self, port: int) -> None:
        assert self.python is not None
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        cmd = [
            str(self.python), "-m", "gunicorn", "oscarshop.wsgi",
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(self.workers),
            "--timeout", "60",
            "--graceful-timeout", "5",
            "--access-logfile", str(self.access_log),
            "--access-logformat", '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms',
            "--error-logfile", str(self.error_log),
            "--capture-output",
            "--no-control-socket",  # gunicorn 27 would open one shared control socket in $HOME
        ]  # fmt: skip
        with open(self.workdir / "gunicorn.out", "ab") as out:
            self._proc = subprocess.Popen(
                cmd,
                cwd=PROJECT,
                env=self._env(self.db_path),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals the master and its workers
                preexec_fn=_die_with_parent,
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise OscarShopError(
                    f"gunicorn exited ({code}) before {self.url}/api/ answered; {self.error_log}:\n{_tail(self.error_log)}"
                )
            try:
                with urllib.request.urlopen(self.url + "/api/", timeout=5) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise OscarShopError(
            f"{self.url}/api/ did not answer 200 within {self.start_timeout:.0f} s (last: {last}); {self.error_log}:\n{_tail(self.error_log)}"
        )

    def stop(self) -> None:
        """SIGTERM to gunicorn's process group, SIGKILL after ``stop_timeout``; returns when all are gone."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the master leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)  # workers that outlived their master, or a master that hung
        proc.wait(timeout=self.stop_timeout)

    # ------------------------------------------------------------ reading the books (read-only)

    @property
    def books_url(self) -> str:
        """A read-only SQLAlchemy URL of the live database (``mode=ro`` needs ``uri=true``, or pysqlite ignores it)."""
        return f"sqlite:///file:{self.db_path}?mode=ro&uri=true"

    def count(self, sql: str, params: tuple[object, ...] = ()) -> int:
        """The first column of the first row of ``sql`` (0 when no row or NULL), read through a read-only connection."""
        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            row = con.execute(sql, params).fetchone()
        finally:
            con.close()
        return int(row[0] or 0) if row else 0

    def log_tail(self, lines: int = 40) -> str:
        return f"{self.error_log}:\n{_tail(self.error_log, lines)}"
