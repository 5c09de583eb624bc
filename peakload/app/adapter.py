"""``peakload adapter check``: each journey step once against the live target, as a table.

The calls run in a child process (``python -m scenarios.adapter_check``: it
imports Locust); this side validates the profile and the dialect first, starts
the embedded storefront when the profile names no target, and returns the
child's exit status (0 = every offered step answered as expected, 1 = at least
one did not).

Usage::

    code = adapter_check(Path("profiles/oscar-smoke.yaml"), target="http://127.0.0.1:8000")
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from peakload.app.target import EmbeddedStorefront, check_allowed, preflight
from peakload.core import load_profile
from peakload.core.runenv import RunEnv, new_run_id
from scenarios.dialects import load_dialect

__all__ = ["adapter_check"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def adapter_check(profile_path: Path, *, target: str | None = None, allow: list[str] | None = None, timeout: float = 300.0) -> int:
    profile = load_profile(profile_path)
    shop = load_dialect(profile.target, base_dir=Path(profile_path).resolve().parent)
    url = target or profile.target.url
    if url:
        check_allowed(url, allow=[*profile.target.allow, *(allow or [])])
    with ExitStack() as stack:
        if not url:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="peakload-check-")))
            embedded = EmbeddedStorefront(workdir, options=profile.embedded, seed=profile.seed, log_path=workdir / "storefront.log")
            stack.callback(embedded.stop)
            url = embedded.start()
        preflight(url, shop.health_path(profile.target))
        env = {**os.environ, **RunEnv(profile_path=str(profile_path), run_id=new_run_id()).to_environ()}
        proc = subprocess.run([sys.executable, "-m", "scenarios.adapter_check", url], cwd=REPO_ROOT, env=env, timeout=timeout, check=False)
        return 1 if proc.returncode not in (0, 1) else proc.returncode
