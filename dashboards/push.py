"""Push the generated dashboards to a Grafana (idempotent).

Ensures the folder "peakload" (uid ``peakload``) exists, then uploads every
``*.json`` of the dashboards folder with ``overwrite: true``. The API token
comes from ``GRAFANA_TOKEN`` (or the ``token`` argument) and is never printed.

Usage::

    push_dashboards("http://127.0.0.1:3000", token=os.environ["GRAFANA_TOKEN"], dashboards_dir="dashboards/generated")
    python -m dashboards.push --url http://127.0.0.1:3000   # exit 0 on success, 1 with one line on failure
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaTimeoutError,
    GrafanaUnauthorizedError,
)

from dashboards.errors import (
    DashboardsError,
    GrafanaAuthError,
    GrafanaUnreachableError,
    PushError,
)

__all__ = ["FOLDER_UID", "FOLDER_TITLE", "TOKEN_ENV", "push_dashboards", "main"]

FOLDER_UID = "peakload"
FOLDER_TITLE = "peakload"
TOKEN_ENV = "GRAFANA_TOKEN"


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")  # never userinfo


def _fail(url: str, step: str, exc: BaseException) -> PushError:
    where = _where(url)
    if isinstance(exc, GrafanaUnauthorizedError) or (isinstance(exc, GrafanaClientError) and exc.status_code == 403):
        return GrafanaAuthError(f"Grafana at {where} refused the token ({exc.status_code}) while {step}; check {TOKEN_ENV}")
    if isinstance(exc, (GrafanaTimeoutError, niquests.exceptions.RequestException, OSError)):
        reason = type(exc).__name__
        if isinstance(exc, niquests.exceptions.ConnectionError):
            reason = "connection refused or host unreachable"
        elif isinstance(exc, (GrafanaTimeoutError, niquests.exceptions.Timeout)):
            reason = "timed out"
        return GrafanaUnreachableError(f"cannot reach Grafana at {where} while {step}: {reason}")
    if isinstance(exc, GrafanaException):
        message = exc.message if isinstance(exc.message, str) else str(exc.status_code)
        return PushError(f"Grafana at {where} answered {exc.status_code} while {step}: {message.splitlines()[0][:200]}")
    return PushError(f"push to {where} failed while {step}: {type(exc).__name__}")


def _load(dashboards_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    files = sorted(dashboards_dir.glob("*.json"))
    if not files:
        raise PushError(f"no dashboards (*.json) in {dashboards_dir}; run: peakload dashboards build --out {dashboards_dir}")
    out = []
    for path in files:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PushError(f"{path}: not a dashboard JSON file: {exc}") from None
        if not isinstance(doc, dict) or not doc.get("uid"):
            raise PushError(f"{path}: expected a dashboard object with a uid")
        out.append((path, doc))
    return out


def push_dashboards(url: str, token: str, dashboards_dir: str | Path, *, timeout: float = 10.0) -> None:
    """Ensure folder "peakload" and upload every dashboard of ``dashboards_dir`` with overwrite.

    Raises GrafanaAuthError (401/403), GrafanaUnreachableError (network) or
    PushError (anything else) with one line that never contains the token.
    """
    if not token:
        raise GrafanaAuthError(f"no Grafana API token: set {TOKEN_ENV}")
    boards = _load(Path(dashboards_dir))
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    step = "checking folder 'peakload'"
    try:
        try:
            api.folder.get_folder(FOLDER_UID)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            step = "creating folder 'peakload'"
            api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        for path, doc in boards:
            step = f"uploading {path.name}"
            body = {k: v for k, v in doc.items() if k not in ("id", "version")}  # Grafana assigns these
            api.dashboard.update_dashboard(
                {
                    "dashboard": body,
                    "folderUid": FOLDER_UID,
                    "overwrite": True,
                    "message": "peakload dashboards push",
                }
            )
    except (GrafanaException, niquests.exceptions.RequestException, OSError) as exc:
        raise _fail(url, step, exc) from None
    finally:
        api.client.s.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m dashboards.push --url URL [--dir DIR]``: 0 on success, 1 on a push failure, 2 on bad input."""
    parser = argparse.ArgumentParser(prog="python -m dashboards.push", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="Grafana base URL, e.g. http://127.0.0.1:3000")
    parser.add_argument("--dir", default=str(Path(__file__).resolve().parent / "generated"), help="folder of dashboard JSON files")
    args = parser.parse_args(argv)
    try:
        push_dashboards(args.url, os.environ.get(TOKEN_ENV, ""), args.dir)
    except DashboardsError as exc:
        print(f"peakload: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"pushed {len(list(Path(args.dir).glob('*.json')))} dashboards to folder {FOLDER_TITLE!r} at {_where(args.url)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
