"""``summary.json``: the typed record of a run's result, and the only place its fields are named.

The reports build a :class:`Summary`; ``summary.json`` is its JSON
(:meth:`Summary.to_json`), checked against ``reports/summary.schema.json`` in
``tests/reports/test_summary_record.py``. The renderers (Markdown, HTML,
JUnit) and the CLI read attributes, not string keys. A saved summary from disk
(a baseline) is read back tolerantly by ``reports.compare``, which must also
judge summaries written by older versions.

Usage::

    s = Summary(run_id="r1", ..., total=RequestRow(...), thresholds=[ThresholdRow(...)])
    s.status, s.total.p95_ms, s.thresholds[0].passed
    json.dumps(s.to_json())
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from peakload.core.steps import check_step

__all__ = [
    "SCHEMA_ID",
    "Record",
    "FailureReason",
    "RequestRow",
    "ThresholdRow",
    "StageRow",
    "StageVerdict",
    "Summary",
    "ServerSide",
    "ServerFigure",
    "Status",
    "DecidedBy",
    "TOP_REASONS",
]

__all__ += ["LagFigures", "LagCheck", "GeneratorLag"]

SCHEMA_ID: Final = "peakload/summary/v1"

Status = Literal["passed", "failed", "invalid", "unjudged", "ungated"]
TOP_REASONS: Final = 5  # failure messages a request row lists
DecidedBy = Literal[
    "run-invalid",
    "no-measurements",
    "generator-lag",
    "generator-overloaded",
    "incomplete",
    "capacity-knee",
    "aborted",
    "threshold-failed",
    "nothing-judged",
    "no-thresholds-by-design",
    "thresholds-passed",
]


class Record(BaseModel):
    """A frozen record that crosses a room boundary: unknown fields refused, no inf/nan."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)


class FailureReason(Record):
    """One failure message of a request row and how many of its failures said it."""

    message: str
    count: int = Field(ge=1)


class RequestRow(Record):
    """One request name's totals (or one journey step's, or ``total``: all of them); latencies in ms, None = no sample.

    ``step`` is the journey step when every request of the row had that one step; a
    step's own row (``Summary.steps``) is named by its threshold scope, ``step:checkout``.
    """

    name: str
    method: str
    step: str | None = None  # the one journey step all its requests had (None: several, or none)
    requests: int = Field(ge=0)
    failures: int = Field(ge=0)
    error_ratio: float = Field(ge=0, le=1)
    rps: float = Field(ge=0)
    avg_ms: float | None = Field(ge=0)
    max_ms: float | None = Field(ge=0)
    p50_ms: float | None = Field(ge=0)
    p90_ms: float | None = Field(ge=0)
    p95_ms: float | None = Field(ge=0)
    p99_ms: float | None = Field(ge=0)
    p99_9_ms: float | None = Field(ge=0)
    status: dict[str, int]
    errors: dict[str, int]
    # the most frequent failure messages (at most TOP_REASONS), by count then message; empty without failures
    failure_reasons: list[FailureReason] = Field(default_factory=list, max_length=TOP_REASONS)


class ThresholdRow(Record):
    """One judged threshold; ``passed`` None = skipped, with the reason in ``message``."""

    id: str
    scope: str
    metric: str
    op: Literal["<", "<=", ">", ">=", "=="]
    limit: float
    unit: Literal["s", "ratio", "1/s", "count"]
    observed: float | None
    passed: bool | None
    abort: bool
    source: str
    message: str
    # a scoped threshold (during: / after:): its window as written, and that window's offsets (s) from the run's start
    # (end None: the run's end; both None: the window could not be placed, the message says why)
    window: str | None = None
    window_start_s: float | None = None
    window_end_s: float | None = None


StageVerdict = Literal["passed", "failed", "not judged", "no thresholds"]


class StageRow(Record):
    """One stage of the profile on the run's timeline: its figures (the intervals whose midpoint lies in
    ``[start_s, end_s)``) and the verdict of the thresholds scoped ``during:`` it. None = no sample."""

    index: int = Field(ge=0)
    name: str  # "" for an unnamed stage (shown as #N)
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)
    intervals: int = Field(ge=0)
    requests: int = Field(ge=0)
    failures: int = Field(ge=0)
    rps: float | None = Field(ge=0)
    error_ratio: float | None = Field(ge=0, le=1)
    p50_ms: float | None = Field(ge=0)
    p95_ms: float | None = Field(ge=0)
    p99_ms: float | None = Field(ge=0)
    # passed/failed as its ``during:`` thresholds; "not judged": they had no data; "no thresholds": none is scoped to it
    verdict: StageVerdict
    thresholds: list[str] = Field(default_factory=list)  # ids of the thresholds scoped during this stage

    @property
    def label(self) -> str:
        return self.name or f"#{self.index + 1}"


class ServerFigure(Record):
    """One server-side figure over the run's intervals (None where no interval gave it: n/a)."""

    unit: str = ""
    samples: int = Field(ge=0)  # intervals that gave a value
    intervals: int = Field(ge=0)  # intervals sampled
    min: float | None = None
    p50: float | None = None
    max: float | None = None
    last: float | None = None


class ServerSide(Record):
    """The target's own figures during the run (``server.jsonl``): how they were sampled and each figure's spread."""

    source: str  # "storefront defaults" or "profile"
    interval_s: float = Field(gt=0)
    endpoints: list[str] = Field(default_factory=list)
    prometheus: str | None = None
    figures: dict[str, ServerFigure]
    errors: list[str] = Field(default_factory=list, max_length=10)  # the first scrape/query failures, counted in the problems


class LagFigures(Record):
    """One generator lag over the run (ms; None = no sample)."""

    samples: int = Field(ge=0)
    p50_ms: float | None = Field(ge=0)
    p99_ms: float | None = Field(ge=0)
    max_ms: float | None = Field(ge=0)


class LagCheck(Record):
    """One judged percentile threshold against the generator's lag at ``lag_percentile`` (the judged one)."""

    threshold: str  # the threshold's id
    scope: str
    metric: str  # p95, p99, ...
    judged_ms: float = Field(ge=0)  # the figure the threshold judged
    lag_percentile: float
    scheduler_lateness_ms: float | None = Field(ge=0)  # None: no sample (a closed-model run)
    response_handling_lag_ms: float | None = Field(ge=0)
    lag_ms: float = Field(ge=0)  # their sum
    allowed_ms: float = Field(ge=0)  # max(tolerance_ratio × judged, tolerance_floor_ms)
    share: float | None = Field(ge=0)  # lag / judged (None: judged 0)
    within: bool


class GeneratorLag(Record):
    """The generator's own lag (docs/open-model.md): its figures, the tolerance, and one check per judged percentile."""

    scheduler_lateness: LagFigures | None  # actual send − intended instant of a journey's first request (open model)
    response_handling_lag: LagFigures | None  # the gevent loop's lag (a 10 ms timer's overshoot), the proxy
    tolerance_ratio: float = Field(ge=0)
    tolerance_floor_ms: float = Field(ge=0)
    checks: list[LagCheck] = Field(default_factory=list)


class Summary(Record):
    """The result of one run: verdict, per-request rows, business counters, books, thresholds."""

    schema_id: Literal["peakload/summary/v1"] = Field(SCHEMA_ID, alias="schema")
    run_id: str = Field(min_length=1)
    profile: str | None
    target: str | None
    git_revision: str | None
    seed: int | None = None
    workers: int = Field(0, ge=0)
    dialect: str | None = None  # target.dialect: storefront, oscar, module:Class
    isolated: bool | None = None  # were the run's writes kept out of the platform's real figures (None: unknown)
    isolation: str | None = None  # how that is known: a confirmed probe order, or the adapter's word
    started: str | None
    ended: str | None
    duration_s: float = Field(ge=0)
    complete: bool
    status: Status
    exit_code: Literal[0, 1, 3]
    reason: str | None
    decided_by: DecidedBy
    latency_basis: Literal["response", "intended-start", "service"]
    intervals: int = Field(ge=0)
    requests: dict[str, RequestRow]
    # per journey step (only steps that had requests, in journey order), whatever the platform's route names
    steps: dict[str, RequestRow] = Field(default_factory=dict)
    total: RequestRow
    business: dict[str, int]
    arrivals: dict[str, int]
    reconciliation: dict[str, Any] | None
    thresholds: list[ThresholdRow]
    # the profile's stages on the run's timeline (offsets from the schedule's start), with figures and verdicts
    stages: list[StageRow] = Field(default_factory=list)
    # what offset 0 of stages and windows is (the arrivals start event, run.json start_at, or the first interval's start)
    timeline_start: str | None = None
    events: list[dict[str, Any]]
    problems: list[str]
    # exceptions raised in the user code (tasks, on_start) as Locust counted them: top 10, never silent
    user_errors: list[FailureReason] = Field(default_factory=list, max_length=10)
    # what this run's platform does not offer (journey steps, books figures): shown as n/a, never 0
    not_offered: list[str] = Field(default_factory=list)
    baseline: dict[str, Any] | None = None
    capacity: dict[str, Any] | None = None
    # the generator's own lag (scheduler lateness, response-handling lag) and its checks; absent when not measured
    generator: GeneratorLag | None = None
    # the target's own figures (server.jsonl), when the run sampled them
    server: ServerSide | None = None
    # which side saturated under the run's peak load, and the evidence (reports/attribution.py)
    attribution: dict[str, Any] | None = None

    @field_validator("steps")
    @classmethod
    def _journey_steps(cls, v: dict[str, RequestRow]) -> dict[str, RequestRow]:
        for step in v:
            check_step(step)
        return v

    @property
    def judged(self) -> list[ThresholdRow]:
        return [t for t in self.thresholds if t.passed is not None]

    def to_json(self) -> dict[str, Any]:
        """The ``summary.json`` object (``schema`` key first; optional sections only when present)."""
        out = self.model_dump(mode="json", by_alias=True)
        for key in ("baseline", "capacity", "server", "attribution"):
            if out[key] is None:
                del out[key]
        if out["generator"] is None:  # the generator's lag: only when it was measured
            del out["generator"]
        return out
