"""The shopper funnel on one core: peakload instrumented vs a bare Locust ``FastHttpUser``, side by side in one run.

Usage::

    .venv/bin/python bench/journey.py                       # 3 rounds of 4000 visits per side at 250 visits/s
    .venv/bin/python bench/journey.py --rounds 5 --visits 6000 --rate 300
    .venv/bin/python bench/journey.py --rss                 # idle cost: RSS per pool user at 10,000 and 50,000

Target: Debian nginx on CPU 0 answering every storefront route with canned,
correct JSON (``bench/shop_client_ab.py``'s answers), so the generator, not
the shop, is the bottleneck and a wrong body would be counted as a failure.
Each side is one Locust process on CPU 1 making the same visits at the same
offered rate (sign-in once per user; a visit is home, 2 x (category page,
product, cart PUT), cart, checkout, pay, order: 11 requests):

* peakload: the real ``locustfile.py`` with an open-model profile
  (``journey: shopper``, ``--visits`` arrivals at ``--rate``/s, a pool of 64
  users, no think time, every branch ratio 0 or 1), the exporter serving
  /metrics (scraped every 5 s), HDR histograms for intended-start and service
  time, snapshots every 2 s, the arrival scheduler;
* bare Locust: ``bench/journey_bare_locustfile.py``, 64 ``FastHttpUser`` s with
  ``rest()`` body checks, ``--visits`` visits in all, each user pacing its
  visits on a common grid (user u's k-th visit at T0 + (u + 64k) / rate), so
  the visits are evenly spread, one every 1/rate s, like the open model's
  arrivals: the same load, which is what the ratio compares;
* bare Locust on ``constant_pacing`` (third side, ``--no-paced`` leaves it
  out): the same users with Locust's own pacing, all spawned at once. Users
  spawned or late together stay together, so its visits come in bunches and
  the process, always having another answer ready, rarely sleeps: cheaper per
  request, but a different (bursty) load. Its ratio is printed too.

Each side's sleeps per request (voluntary context switches of its threads,
/proc/<pid>/task/*/status) show which load it offered: about 1 per request
for evenly spread visits, about 0 for bunched ones.

Requests are counted by the target (nginx ``stub_status``, its own polls
taken off) and by each side (Locust's ``--json`` totals); CPU is the Locust
process's user + system time from ``/proc/<pid>/stat``, over the window from
the first request the target saw to the last. The figure is requests per
CPU-second; failures are counted on both sides and a side with failures, or
whose count differs from the target's, makes the run invalid (exit 3): a
fast-failing client must not win. Sides alternate per round; the ratio is
peakload / bare (evenly spread) of the per-side medians. Goal >= 2.0, floor 1.5 (exit 0 at
or above the floor, 2 below).

``--rss``: a pool of 10,000 and of 50,000 idle users (single_request and
shopper journeys, an arrival rate too low to wake them), the Locust
process's VmRSS once the pool is spawned, minus the same process with a pool
of 1: KB per pooled user, and whether 50,000 fit in 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generator import Scraper, locust_cmd, nginx_requests, run_env, start_nginx  # noqa: E402
from shop_client_ab import LOCATIONS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GOAL, FLOOR = 2.0, 1.5
POOL = 64
MAX_ROUNDS = 5
MAX_VISITS = 20_000
TICK = os.sysconf("SC_CLK_TCK")
PROFILE = """\
version: peakload/v1
name: bench-journey
slo: {slo}
target: {{users: 1000}}
arrivals:
  kind: constant
  stages: [{{duration: {seconds}s, rate: {rate}}}]
  journey: {journey}
  path: /api/home
  pool: {pool}
  max_pool: {max_pool}
journey:
  think_time: {{min: 0, max: 0}}
  session_actions: {{min: 2, max: 2}}
  login_ratio: 1.0
  ratios: {{search: 0.0, view_to_cart: 1.0, cart_edit: 0.0, cart_to_checkout: 1.0, checkout_to_pay: 1.0, coupon: 0.0}}
"""


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_sleeps(pid: int) -> int:
    """Times the process's threads went to sleep (voluntary context switches, /proc/<pid>/task/*/status)."""
    n = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    n += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended between the listing and the read
    return n


def proc_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class Side:
    target: int  # requests the target served in the whole run
    client: int  # requests the side counted (Locust's totals)
    failures: int
    window_requests: int  # target-counted, first to last request
    cpu_s: float
    sleeps: int  # voluntary context switches in the window: the process found nothing to do and slept

    @property
    def per_cpu(self) -> float:
        return self.window_requests / self.cpu_s if self.cpu_s > 0 else float("nan")


class Target:
    """nginx's request count with this bench's own status polls taken off."""

    def __init__(self, port: int) -> None:
        self.port, self.polls = port, 0

    def served(self) -> int:
        self.polls += 1
        return nginx_requests(self.port) - self.polls


def peakload_env(tmp: Path, *, journey: str, seconds: float, rate: float, pool: int, tag: str) -> tuple[dict[str, str], int]:
    profile = tmp / f"journey-{tag}.yaml"
    profile.write_text(
        PROFILE.format(
            seconds=f"{seconds:g}", rate=rate, journey=journey, pool=pool, max_pool=max(pool, 10_000), slo=REPO / "profiles" / "slo.yaml"
        )
    )
    return run_env(profile, tmp, tag=tag, drop=("PEAKLOAD_", "BENCH_"))


def run_side(tmp: Path, name: str, *, host: str, target: Target, visits: int, rate: float, tag: str, pacing: bool = False) -> Side:
    seconds = visits / rate
    run_s = seconds + 30  # an upper bound; the run is stopped once the target has seen its last request
    if name == "peakload":
        env, mport = peakload_env(tmp, journey="shopper", seconds=seconds, rate=rate, pool=POOL, tag=tag)
        cmd = locust_cmd(REPO / "locustfile.py", host=host, users=1, run_s=run_s, cpus="1")
    else:
        env, mport = {k: v for k, v in os.environ.items() if not k.startswith(("PEAKLOAD_", "BENCH_"))}, None
        env.update(
            BENCH_VISITS_PER_USER=str(visits // POOL),
            BENCH_PACING=repr(POOL / rate),
            BENCH_GRID="0" if pacing else "1",
            PYTHONPATH=str(REPO),
        )
        # Spawned at the visit rate and paced on their own grids, the users' visits stay evenly spread, one every
        # 1/rate s, as the open model's arrivals are; --bare-pacing is Locust's constant_pacing, all spawned in 0.1 s
        spawn = None if pacing else rate
        cmd = locust_cmd(REPO / "bench" / "journey_bare_locustfile.py", host=host, users=POOL, run_s=run_s, cpus="1", spawn_rate=spawn)
    cmd = [*cmd, "--json"]
    before = target.served()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    scraper = Scraper(mport) if mport else None
    if scraper:
        scraper.start()
    try:
        deadline = time.monotonic() + run_s + 30
        start = last = None
        while time.monotonic() < deadline:
            try:
                c = (proc_cpu(proc.pid), proc_sleeps(proc.pid))
            except (FileNotFoundError, ProcessLookupError):
                break  # ended between two samples
            n, t = target.served(), time.monotonic()
            if start is None:
                if n > before:
                    start = last = (n, c, t)
            elif n != last[0]:
                last = (n, c, t)
            elif t - last[2] > 1.5:  # the target saw nothing new for 1.5 s: the side is done
                break
            if proc.poll() is not None:
                break  # peakload's run ends with its schedule
            time.sleep(0.1)
        if start is None or last is None:
            raise RuntimeError(
                f"{name}: the target saw no request: {proc.stderr.read().decode()[-800:] if proc.poll() is not None else ''}"
            )
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        if "[" not in out.decode():
            raise RuntimeError(f"{name}: no --json totals (exit {proc.returncode}): {err.decode()[-800:]}")
    finally:
        if scraper:
            scraper.stop.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stats = json.loads(out.decode()[out.decode().index("[") :])
    client = sum(s["num_requests"] for s in stats)
    failures = sum(s["num_failures"] for s in stats)
    return Side(
        target=target.served() - before,
        client=client,
        failures=failures,
        window_requests=last[0] - start[0],
        cpu_s=last[1][0] - start[1][0],
        sleeps=last[1][1] - start[1][1],
    )


def rss_run(tmp: Path, *, host: str, journey: str, pool: int) -> int:
    """VmRSS (KB) of a Locust process holding ``pool`` idle pool users, once spawning has settled."""
    env, _ = peakload_env(tmp, journey=journey, seconds=600, rate=0.001, pool=pool, tag=f"rss-{journey}-{pool}")
    cmd = locust_cmd(REPO / "locustfile.py", host=host, users=1, run_s=600, cpus="1")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        seen, stable_since = 0, time.monotonic()
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"rss {journey} {pool}: Locust ended (exit {proc.returncode}): {proc.stderr.read().decode()[-800:]}")
            rss = proc_rss_kb(proc.pid)
            if rss > seen * 1.002 + 256:
                seen, stable_since = rss, time.monotonic()
            elif time.monotonic() - stable_since > 4.0:
                return seen
            time.sleep(0.25)
        raise RuntimeError(f"rss {journey} {pool}: RSS still growing after 240 s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main_rss(host: str, tmp: Path) -> int:
    for journey in ("single_request", "shopper"):
        base = rss_run(tmp, host=host, journey=journey, pool=1)
        per = {}
        for pool in (10_000, 50_000):
            rss = rss_run(tmp, host=host, journey=journey, pool=pool)
            per[pool] = (rss - base) / pool
            print(
                f"{journey:<14} pool {pool:>6}: RSS {rss / 1024:7.1f} MiB ({base / 1024:.1f} MiB with a pool of 1): {per[pool]:.1f} KB per pooled user"
            )
            if pool == 50_000:
                fits = "fits" if rss <= 1024 * 1024 else "does NOT fit"
                print(f"{journey:<14} a 50,000-user pool {fits} in 1 GiB ({rss / 1024:.0f} MiB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help=f"rounds (max {MAX_ROUNDS})")
    parser.add_argument("--visits", type=int, default=4000, help=f"visits per side per round (max {MAX_VISITS})")
    parser.add_argument("--rate", type=float, default=250.0, help="offered visits per second, both sides")
    parser.add_argument("--rss", action="store_true", help="measure the idle cost per pooled user instead")
    parser.add_argument(
        "--no-paced", action="store_true", help="leave out the third side (bare users on Locust's constant_pacing, visits in bunches)"
    )
    a = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="peakload-journey-") as tmp_s:
        tmp = Path(tmp_s)
        nginx, port = start_nginx(tmp, locations=LOCATIONS)
        host = f"http://127.0.0.1:{port}"
        try:
            if a.rss:
                return main_rss(host, tmp)
            rounds, visits = min(max(a.rounds, 1), MAX_ROUNDS), min(max(a.visits, POOL), MAX_VISITS) // POOL * POOL
            target = Target(port)
            sides = ("peakload", "bare") if a.no_paced else ("peakload", "bare", "bare-paced")
            per_cpu: dict[str, list[float]] = {name: [] for name in sides}
            invalid = []
            for r in range(rounds):
                for name in sides if r % 2 == 0 else sides[::-1]:
                    s = run_side(
                        tmp,
                        name.split("-")[0],
                        host=host,
                        target=target,
                        visits=visits,
                        rate=a.rate,
                        tag=f"{name}-{r}",
                        pacing=name == "bare-paced",
                    )
                    per_cpu[name].append(s.per_cpu)
                    ok = s.failures == 0 and s.client == s.target
                    if not ok:
                        invalid.append(f"round {r + 1} {name}: {s.failures} failures, client counted {s.client}, target served {s.target}")
                    print(
                        f"round {r + 1}: {name:<10} {s.window_requests} requests in {s.cpu_s:.2f} CPU s: {s.per_cpu:6.0f} requests per CPU-second; "
                        f"{max(s.sleeps, 0) / max(s.window_requests, 1):.2f} sleeps per request; "
                        f"client {s.client} = target {s.target}: {'yes' if s.client == s.target else 'NO'}; failures {s.failures}"
                    )
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    peak, bare = statistics.median(per_cpu["peakload"]), statistics.median(per_cpu["bare"])
    ratio = peak / bare
    verdict = "goal met" if ratio >= GOAL else "floor met, goal not" if ratio >= FLOOR else "below the floor"
    print(
        f"shopper funnel, requests per generator CPU-second (median of {rounds}): peakload {peak:.0f}, bare FastHttpUser {bare:.0f} "
        f"(the same evenly spread visits); ratio {ratio:.2f} (goal {GOAL}, floor {FLOOR}): {verdict}"
    )
    if "bare-paced" in per_cpu:
        paced = statistics.median(per_cpu["bare-paced"])
        print(
            f"against bare FastHttpUser on constant_pacing {paced:.0f} (its visits in bunches: it rarely sleeps, which is cheaper per "
            f"request, but it is not the load peakload offers): ratio {peak / paced:.2f}"
        )
    if invalid:
        print("INVALID: " + "; ".join(invalid))
        return 3
    return 0 if ratio >= FLOOR else 2


if __name__ == "__main__":
    sys.exit(main())
