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
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from peakload.core import ConfigError, Profile, load_profile
from peakload.core.runenv import RunEnv, ensure_run_id, new_run_id
from peakload.core.shard import Shard

__all__ = ["RunSettings", "get_settings", "read_settings", "user_rng", "DEFAULT_PROFILE"]

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
    shard: Shard | None = None  # PEAKLOAD_SHARD: this master's share of a schedule several masters share
    start_at: float | None = None  # PEAKLOAD_START_AT: the schedule's start (epoch s), the same on every shard


def read_settings(env: Mapping[str, str] | None = None) -> RunSettings:
    """Build :class:`RunSettings` from ``env`` (default ``os.environ``); loads the profile.

    A generated run id is stored back into ``os.environ`` when reading the
    process environment (the same convention as the metrics bridge).

    Raises ConfigError (one line naming the variable or the profile field).

    Usage: ``read_settings({"PEAKLOAD_PROFILE": "profiles/soak.yaml", "PEAKLOAD_SCALE": "0.1"})``
    """
    from_process = env is None
    run = RunEnv.from_environ(os.environ if env is None else env)
    path = run.profile_path
    if not path:
        # The default also works when Locust is started from another folder.
        path = DEFAULT_PROFILE if Path(DEFAULT_PROFILE).exists() else str(_REPO / DEFAULT_PROFILE)
    profile = load_profile(path)
    # A generated id is written back so every other reader in this process (the metrics bridge)
    # and every forked worker uses the same one.
    run_id = run.run_id or (ensure_run_id() if from_process else new_run_id())
    shard = run.shard or (profile.arrivals.shard_of if profile.arrivals is not None else None)
    if shard is not None and profile.arrivals is None:
        raise ConfigError(f"PEAKLOAD_SHARD: {path} is a closed-model profile (shape); shards split an arrival schedule (arrivals)")
    if shard is not None and run.start_at is None:
        raise ConfigError(f"PEAKLOAD_SHARD={shard}: set PEAKLOAD_START_AT too (the instant every shard starts the schedule at)")
    return RunSettings(
        profile=profile,
        profile_path=path,
        run_id=run_id,
        seed=profile.seed if run.seed is None else run.seed,
        scale=1.0 if run.scale is None else run.scale,
        duration=run.duration,
        results_dir=Path(run.results_dir) if run.results_dir else None,
        metrics_port=run.metrics_port,
        snapshot_interval=2.0 if run.snapshot_interval is None else run.snapshot_interval,
        workers=1 if run.workers is None else run.workers,
        shard=shard,
        start_at=run.start_at,
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
