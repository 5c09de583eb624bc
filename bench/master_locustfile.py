"""Locustfile for bench/master.py's master: the real ``locustfile.py`` plus timings of the merge.

Everything of ``locustfile.py`` (users, the profile's shape, the instrumentation
that makes a master a :class:`scenarios.aggregator.MasterAggregator`) and, on a
master, thin timers around what the aggregator does per worker push and per
snapshot line: for each ``peakload_delta`` message the lag from its interval end
(``t_end``, the wall-clock boundary the worker pushed at) to the handler's start
and end, and the handler's own duration; for each snapshot line written by the
loop, how late it was (against ``boundary + I/2``) and how long it took. Written
to ``BENCH_MASTER_OUT`` (JSON) on ``quit``. The timers cost two clock reads per
message. Not meant to be run by hand.
"""

import json
import os
import sys
import time

from locust import events
from locust.runners import MasterRunner

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from locustfile import *  # noqa: E402,F403  (the real locustfile: users, shape, instrumentation)
from scenarios.bridge import DELTA_MESSAGE  # noqa: E402
from scenarios.instrumentation import instrumentation_of  # noqa: E402

_pushes: list[tuple[float, float, float]] = []  # (t_end, lag at handler start, lag at handler end)
_lines: list[tuple[float, float, float, int]] = []  # (t_end, write delay, write seconds, workers)


@events.init.add_listener
def _timers(environment, **_kw) -> None:
    runner = environment.runner
    agg = instrumentation_of(environment)
    if not isinstance(runner, MasterRunner) or agg is None:
        return
    listener, concurrent = runner.custom_messages[DELTA_MESSAGE]

    def timed_delta(environment, msg, **kw):
        t0 = time.time()
        listener(environment=environment, msg=msg, **kw)
        t_end = float((msg.data or {}).get("t_end", t0))
        _pushes.append((t_end, t0 - t_end, time.time() - t_end))

    runner.custom_messages[DELTA_MESSAGE] = (timed_delta, concurrent)
    write = agg._write_interval
    lag = agg.settings.snapshot_interval * agg.write_lag

    def timed_write(*, t_end, only_if_data=False):
        t0 = time.time()
        write(t_end=t_end, only_if_data=only_if_data)
        if not only_if_data:  # the loop's lines (the flushes at stop/quit pass only_if_data)
            _lines.append((t_end, t0 - (t_end + lag), time.time() - t0, runner.worker_count))

    agg._write_interval = timed_write

    @events.quit.add_listener
    def _dump(**_kw) -> None:
        out = os.environ.get("BENCH_MASTER_OUT")
        if out:
            with open(out, "w") as fh:
                json.dump({"pushes": _pushes, "lines": _lines}, fh)
