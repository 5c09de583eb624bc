"""The target under load: allowlist, pre-flight check, the embedded storefront.

Usage::

    check_allowed("http://127.0.0.1:8080", allow=[])        # raises UsageError otherwise
    with EmbeddedStorefront(workdir, options) as url: ...   # starts `python -m storefront serve`
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from peakload.core import EmbeddedSpec, RunInvalid, UsageError
from peakload.core.inputs import check_url
from peakload.core.net import is_loopback

__all__ = ["check_allowed", "preflight", "EmbeddedStorefront"]


def check_allowed(url: str, *, allow: list[str]) -> None:
    """Refuse any target outside loopback unless its host is allowlisted."""
    check_url(url, field="--target")
    host = urlsplit(url).hostname or ""
    if is_loopback(host) or host in allow:
        return
    raise UsageError(
        f"--target: refusing to load {host!r}: only loopback targets are allowed unless the host is "
        f"allowlisted (--allow-target {host} or target.allow in the profile)"
    )


def preflight(base_url: str, health_path: str, *, timeout: float = 5.0) -> None:
    """Hit the health endpoint once; raise RunInvalid (exit 3) with the reason if it is not healthy."""
    url = base_url.rstrip("/") + health_path
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            if resp.status >= 400:
                raise RunInvalid(f"target unhealthy: GET {url} answered {resp.status}")
    except urllib.error.HTTPError as exc:
        raise RunInvalid(f"target unhealthy: GET {url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RunInvalid(f"target unreachable: GET {url} failed: {reason}") from None


class EmbeddedStorefront:
    """The reference storefront as a child process on a free loopback port (SQLite)."""

    def __init__(self, workdir: Path, *, options: EmbeddedSpec, seed: int, log_path: Path) -> None:
        self.workdir = workdir
        self.options = options
        self.seed = seed
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.db_url = f"sqlite:///{workdir / 'storefront.sqlite'}"
        # embedded.access_log: the storefront's combined-format log, moved into the results folder at the end
        self.access_log_path: Path | None = workdir / "access.log" if options.access_log else None

    def start(self, *, timeout: float = 60.0) -> str:
        port_file = self.workdir / "storefront.url"
        cmd = [
            sys.executable,
            "-m",
            "storefront",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--exit-with-parent",
            "--db",
            self.db_url,
            "--skus",
            str(self.options.skus),
            "--seed",
            str(self.seed),
            "--flash-stock",
            str(self.options.flash_stock),
            "--gateway-latency-ms",
            f"{self.options.gateway_latency_ms:g}",
            "--gateway-failure-rate",
            f"{self.options.gateway_failure_rate:g}",
        ]
        if self.access_log_path is not None:
            cmd += ["--access-log", str(self.access_log_path)]
        cmd += ["--db-pool-size", str(self.options.db_pool_size)]
        for route, seconds in self.options.inject_latency.items():
            cmd += ["--inject-latency", f"{route}={seconds:g}"]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
                raise RunInvalid(f"embedded storefront exited with {self.proc.returncode}: {tail[0]}")
            if port_file.exists() and port_file.read_text().strip():
                self.url = port_file.read_text().strip()
                return self.url
            time.sleep(0.05)
        self.stop()
        raise RunInvalid(f"embedded storefront did not start within {timeout:g}s (log: {self.log_path})")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
