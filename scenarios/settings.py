"""What the Locust process was asked to do: the environment from ``peakload run``.

Reads the variables of docs/contracts.md §3 once per process and loads the
profile once. Every default makes a plain ``locust -f locustfile.py --host URL``
work (smoke profile, generated run id, profile seed, scale 1, full shape).

Usage::

    s = get_settings()
    s.profile.journey.think_time, s.run_id, s.seed, s.scale, s.duration
    rng = user_rng(s.seed, kind="shopper", worker=0, number=3)
"""

from __future__ import annotations

import functools
import math
import os
import random
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from peakload.config import Profile, load_profile
from peakload.errors import ConfigError

__all__ = ["RunSettings", "get_settings", "read_settings", "new_run_id", "user_rng", "DEFAULT_PROFILE"]

DEFAULT_PROFILE = "profiles/smoke.yaml"
_REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """The run as seen from the load generator.

    ``duration`` is the cap from ``PEAKLOAD_DURATION`` (None = the shape's total).
    """

    profile: Profile
    profile_path: str
    run_id: str
    seed: int
    scale: float
    duration: float | None
    results_dir: Path | None
    metrics_port: int
    snapshot_interval: float
    workers: int = 1  # load-generating processes (PEAKLOAD_WORKERS): user accounts interleave across them


def new_run_id(*, now: float | None = None) -> str:
    """``YYYYmmddTHHMMSSZ-xxxx`` (UTC, 4 random hex digits).

    Usage: ``new_run_id()`` -> ``"20251126T025500Z-3fa9"``
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(2)}"


def _number(env: Mapping[str, str], name: str, kind: type, *, positive: bool = False, allow_zero: bool = True) -> float | int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        want = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name}: expected {want}, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name}: expected a finite number, got {raw!r}")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name}: expected a number {bound}, got {raw!r}")
    return value


def read_settings(env: Mapping[str, str] | None = None) -> RunSettings:
    """Build :class:`RunSettings` from ``env`` (default ``os.environ``); loads the profile.

    A generated run id is stored back into ``os.environ`` when reading the
    process environment (the same convention as the metrics bridge).

    Raises ConfigError (one line naming the variable or the profile field).

    Usage: ``read_settings({"PEAKLOAD_PROFILE": "profiles/soak.yaml", "PEAKLOAD_SCALE": "0.1"})``
    """
    from_process = env is None
    env = os.environ if env is None else env
    path = env.get("PEAKLOAD_PROFILE", "").strip()
    if not path:
        # The default also works when Locust is started from another folder.
        path = DEFAULT_PROFILE if Path(DEFAULT_PROFILE).exists() else str(_REPO / DEFAULT_PROFILE)
    profile = load_profile(path)
    seed = _number(env, "PEAKLOAD_SEED", int)
    scale = _number(env, "PEAKLOAD_SCALE", float, positive=True, allow_zero=False)
    duration = _number(env, "PEAKLOAD_DURATION", float, positive=True, allow_zero=False)
    port = _number(env, "PEAKLOAD_METRICS_PORT", int, positive=True)
    interval = _number(env, "PEAKLOAD_SNAPSHOT_INTERVAL", float, positive=True, allow_zero=False)
    workers = _number(env, "PEAKLOAD_WORKERS", int, positive=True, allow_zero=False)
    results = env.get("PEAKLOAD_RESULTS_DIR", "").strip()
    run_id = env.get("PEAKLOAD_RUN_ID", "").strip()
    if not run_id:
        run_id = new_run_id()
        if from_process:
            # Written back so every other reader in this process (the metrics
            # bridge) and every forked worker uses the same generated id.
            os.environ["PEAKLOAD_RUN_ID"] = run_id
    return RunSettings(
        profile=profile,
        profile_path=path,
        run_id=run_id,
        seed=profile.seed if seed is None else int(seed),
        scale=1.0 if scale is None else float(scale),
        duration=None if duration is None else float(duration),
        results_dir=Path(results) if results else None,
        metrics_port=0 if port is None else int(port),
        snapshot_interval=2.0 if interval is None else float(interval),
        workers=1 if workers is None else int(workers),
    )


@functools.lru_cache(maxsize=1)
def get_settings() -> RunSettings:
    """The process-wide settings, read from ``os.environ`` on first use.

    Usage: ``get_settings().run_id``
    """
    return read_settings()


def user_rng(seed: int, *, kind: str, worker: int, number: int) -> random.Random:
    """A reproducible RNG for one simulated user.

    The same (seed, kind, worker, number) gives the same sequence on every run
    and every machine (string seeds are hashed with SHA-512, not ``hash()``).

    Usage: ``user_rng(42, kind="shopper", worker=0, number=7).random()``
    """
    return random.Random(f"peakload-user:{seed}:{kind}:{worker}:{number}")
