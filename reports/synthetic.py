"""A synthetic results folder with known figures (tests and `bench/report.py`).

Usage::

    write_synthetic_run(Path("/tmp/run"), names=20, seconds=3600, interval=2.0)

Latencies are drawn from a seeded log-normal per request name, so the
expected percentiles are known to the caller (``samples`` holds them).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from reports.results import SNAPSHOTS, new_histogram

__all__ = ["write_synthetic_run"]


def write_synthetic_run(
    path: Path,
    *,
    names: int = 3,
    seconds: float = 60,
    interval: float = 2.0,
    rps_per_name: float = 20,
    seed: int = 1,
    fail_every: int = 0,
    end: bool = True,
    keep_samples: bool = False,
    t0: float = 1_764_000_000.0,
) -> dict[str, list[float]]:
    """Write run.json + snapshots.jsonl; returns latencies (s) per request key when ``keep_samples``."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    (path / "run.json").write_text(
        json.dumps({"run_id": path.name, "profile": "synthetic", "target": "http://127.0.0.1:1", "started_ts": t0, "workers": 0})
    )
    keys = [("GET", f"/api/synthetic/{i}/{{id}}") for i in range(names)]
    samples: dict[str, list[float]] = {f"{m} {n}": [] for m, n in keys}
    per_interval = max(1, int(rps_per_name * interval))
    seq = 1  # contracts §5: interval lines count from 1
    with open(path / SNAPSHOTS, "w") as fh:
        fh.write(json.dumps({"v": 1, "kind": "header", "run_id": path.name, "latency_basis": "response"}) + "\n")
        t = 0.0
        while t < seconds:
            rows = []
            for i, (method, name) in enumerate(keys):
                h = new_histogram()
                fails = 0
                total = 0.0
                for k in range(per_interval):
                    v = rng.lognormvariate(-3.5 + 0.1 * i, 0.6)
                    h.record_value(max(1, int(v * 1e6)))
                    total += v
                    if keep_samples:
                        samples[f"{method} {name}"].append(v)
                    if fail_every and k % fail_every == 0:
                        fails += 1
                rows.append(
                    {
                        "name": name,
                        "method": method,
                        "count": per_interval,
                        "failures": fails,
                        "status": {"2xx": per_interval - fails, **({"5xx": fails} if fails else {})},
                        "errors": {"http_5xx": fails} if fails else {},
                        "sum_s": total,
                        "hdr": h.encode().decode(),
                    }
                )
            fh.write(
                json.dumps(
                    {
                        "v": 1,
                        "seq": seq,
                        "t_start": t0 + t,
                        "t_end": t0 + t + interval,
                        "users": 50,
                        "workers": 0,
                        "requests": rows,
                        "business": {
                            "product_views": per_interval,
                            "cart_adds": per_interval // 3,
                            "orders": per_interval // 6,
                            "payments_success": per_interval // 7,
                        },
                        "arrivals": {},
                        "cpu_warning": False,
                    }
                )
                + "\n"
            )
            seq += 1
            t += interval
        if end:
            fh.write(json.dumps({"v": 1, "kind": "end", "reason": "completed"}) + "\n")
    return samples
