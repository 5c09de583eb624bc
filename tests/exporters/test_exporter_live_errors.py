"""Error types from real Locust clients: a dead port is ``connection``, a stalled server ``timeout``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_real_clients_tell_timeouts_from_refused_connections() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PEAKLOAD_PROFILE": str(REPO / "profiles" / "smoke.yaml")}
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("live_errors_script.py"))],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {"refused": ["connection"], "stalled": ["timeout"]}
    assert seen == {"FastHttpUser": expected, "HttpUser": expected}
