"""A real Prometheus on 127.0.0.1 for tests and local runs, plus its HTTP API.

``start_prometheus`` writes ``prometheus.yml`` (1s scrape and rule evaluation,
one job per entry of ``jobs``) and copies the rule files into ``work_dir``,
starts ``prometheus`` on a free loopback port with its own data dir and
``--web.enable-lifecycle``, and waits (polling ``/-/ready`` with a deadline).

Usage::

    with running_prometheus(tmp, jobs={"storefront": ["127.0.0.1:8080"]}, rule_files=[rules]) as prom:
        wait_for_data(prom.url, "up == 1", timeout=10)
        query(prom.url, "sum(rate(storefront_http_requests_total[30s]))")
    panel_queries(json.loads(Path("dashboards/generated/slo.json").read_text()), {"run_id": ".*"})
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dashboards.errors import DashboardBuildError, PrometheusError
from peakload.core.net import free_port, http_get

__all__ = [
    "PrometheusProcess",
    "BUILTIN_VARIABLES",
    "write_config",
    "start_prometheus",
    "stop_prometheus",
    "running_prometheus",
    "reload_prometheus",
    "query",
    "wait_for_data",
    "panel_queries",
]


@dataclass
class PrometheusProcess:
    """A started Prometheus: ``url`` like ``http://127.0.0.1:41234``; its files live in ``work_dir``."""

    url: str
    port: int
    work_dir: Path
    config_path: Path
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def write_config(
    work_dir: str | Path,
    *,
    jobs: Mapping[str, Sequence[str]],
    rule_files: Sequence[str | Path] = (),
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
) -> Path:
    """Write ``prometheus.yml`` (and copies of the rule files under ``rules/``) into ``work_dir``.

    ``jobs`` maps a job name to ``host:port`` targets, e.g. ``{"peakload": ["127.0.0.1:9646"]}``.
    """
    folder = Path(work_dir)
    rules_dir = folder / "rules"
    rules_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for i, src in enumerate(rule_files):
        dst = rules_dir / f"{i:02d}-{Path(src).name}"
        shutil.copyfile(src, dst)
        copied.append(str(dst))
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval, "scrape_timeout": scrape_interval},
        "rule_files": copied,
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]} for job, targets in sorted(jobs.items())],
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def start_prometheus(
    work_dir: str | Path,
    *,
    jobs: Mapping[str, Sequence[str]],
    rule_files: Sequence[str | Path] = (),
    binary: str = "prometheus",
    ready_timeout: float = 30.0,
    scrape_interval: str = "1s",
) -> PrometheusProcess:
    """Start Prometheus on a free 127.0.0.1 port and wait until ``/-/ready`` answers 200.

    Raises PrometheusError (with the log tail) if the binary is missing, the
    config is rejected, or it is not ready before ``ready_timeout`` seconds.
    """
    exe = shutil.which(binary)
    if exe is None:
        raise PrometheusError(f"prometheus binary {binary!r} not found on PATH (Debian: apt-get install prometheus)")
    folder = Path(work_dir)
    config = write_config(folder, jobs=jobs, rule_files=rule_files, scrape_interval=scrape_interval, evaluation_interval=scrape_interval)
    data_dir = folder / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = folder / "prometheus.log"
    last_error = ""
    for _attempt in range(3):  # the free port can be taken between probe and bind
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [
                    exe,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data_dir}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--web.enable-lifecycle",
                    "--storage.tsdb.retention.time=1d",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        prom = PrometheusProcess(url, port, folder, config, data_dir, log_path, proc)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last_error = f"prometheus exited with code {proc.returncode}: {prom.log_tail(5)}"
                break
            try:
                status, _ = http_get(f"{url}/-/ready", timeout=1.0)
                if status == 200:
                    return prom
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)  # poll interval (the deadline bounds the wait)
        else:
            stop_prometheus(prom)
            raise PrometheusError(f"prometheus on {url} not ready after {ready_timeout:g}s: {prom.log_tail(5)}")
        if "address already in use" not in last_error:
            break
    raise PrometheusError(last_error)


def stop_prometheus(prom: PrometheusProcess, *, timeout: float = 10.0) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL. Idempotent."""
    proc = prom.process
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


@contextlib.contextmanager
def running_prometheus(
    work_dir: str | Path,
    *,
    jobs: Mapping[str, Sequence[str]],
    rule_files: Sequence[str | Path] = (),
    binary: str = "prometheus",
    ready_timeout: float = 30.0,
    scrape_interval: str = "1s",
) -> Iterator[PrometheusProcess]:
    """``start_prometheus`` as a context manager that always stops the process."""
    prom = start_prometheus(
        work_dir, jobs=jobs, rule_files=rule_files, binary=binary, ready_timeout=ready_timeout, scrape_interval=scrape_interval
    )
    try:
        yield prom
    finally:
        stop_prometheus(prom)


def reload_prometheus(url: str, *, timeout: float = 10.0) -> None:
    """POST ``/-/reload`` (needs ``--web.enable-lifecycle``) after rewriting the config or rules."""
    req = urllib.request.Request(f"{url}/-/reload", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            if resp.status != 200:
                raise PrometheusError(f"reload of {url} answered HTTP {resp.status}")
    except urllib.error.HTTPError as exc:
        raise PrometheusError(f"reload of {url} failed: HTTP {exc.code}: {exc.read().decode(errors='replace').strip()}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise PrometheusError(f"cannot reach Prometheus at {url}: {exc}") from None


def query(url: str, promql: str, *, at: float | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Instant query via ``/api/v1/query``; returns ``data.result`` (a list, maybe empty).

    A PromQL syntax error raises PrometheusError with Prometheus' message.
    """
    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    try:
        status, body = http_get(f"{url}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=timeout)
    except (urllib.error.URLError, OSError) as exc:
        raise PrometheusError(f"cannot reach Prometheus at {url}: {exc}") from None
    try:
        doc = json.loads(body)
    except ValueError:
        raise PrometheusError(f"Prometheus answered HTTP {status} with non-JSON: {body[:200]!r}") from None
    if doc.get("status") != "success":
        raise PrometheusError(f"query failed ({doc.get('errorType', status)}): {doc.get('error', '')}: {promql}")
    result = doc["data"]["result"]
    if doc["data"].get("resultType") == "scalar":
        return [{"metric": {}, "value": result}]
    return result


def wait_for_data(url: str, promql: str, *, timeout: float = 15.0, interval: float = 0.25) -> list[dict[str, Any]]:
    """Poll ``query`` until the result is non-empty; PrometheusError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = query(url, promql)
        if result:
            return result
        if time.monotonic() >= deadline:
            raise PrometheusError(f"no data for {promql!r} after {timeout:g}s")
        time.sleep(interval)


# ---------------------------------------------------------------- dashboards → PromQL

BUILTIN_VARIABLES: dict[str, str] = {
    "__rate_interval": "30s",
    "__interval": "15s",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
    "__interval_ms": "15000",
}

_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])  # collapsed rows hold their panels


def panel_queries(dashboard_json: Mapping[str, Any], variables: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every target expression of every panel as ``(panel title, PromQL)`` with variables substituted.

    ``variables`` gives values for the dashboard's own variables (e.g. ``{"run_id": ".*"}``);
    Grafana's built-ins default to :data:`BUILTIN_VARIABLES` (``$__rate_interval`` → ``30s``).
    ``datasource`` is not part of PromQL and is ignored. An unknown variable raises DashboardBuildError.
    """
    values = {**BUILTIN_VARIABLES, **variables}
    out: list[tuple[str, str]] = []
    for panel in _panels(list(dashboard_json.get("panels") or [])):
        title = panel.get("title", "")
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if not expr or target.get("hide"):
                continue

            def sub(match: re.Match[str], title: str = title) -> str:
                name = match.group(1) or match.group(2) or match.group(3)
                if name not in values:
                    raise DashboardBuildError(f"panel {title!r}: no value for variable ${name} (pass it in variables)")
                return values[name]

            # Longest names first is implicit: the regex takes a whole \w+ word.
            out.append((title, _VAR.sub(sub, expr)))
    return out
