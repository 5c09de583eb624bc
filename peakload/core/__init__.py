"""The core floor: every contract the rooms share, and no behaviour of a room.

``scenarios``, ``exporters``, ``reports``, ``dashboards`` and ``chaos`` import
this package (and their own libraries) only; the orchestration
(``peakload.app``) and the CLI sit on top. import-linter enforces it
(``[tool.importlinter]`` in pyproject.toml, run by ``make test``).

Modules (each the only owner of its contract):

- :mod:`~peakload.core.errors` — the error tree and exit codes;
- :mod:`~peakload.core.inputs` — reading user files; paths, URLs, ports, numbers;
- :mod:`~peakload.core.fields` — the versioned model base, durations, bounds;
- :mod:`~peakload.core.thresholds` — thresholds and the metric table (kind, unit, formatting);
- :mod:`~peakload.core.steps` — the journey steps every request carries besides its route template;
- :mod:`~peakload.core.profile`, :mod:`~peakload.core.slo` — the profile and SLO models;
- :mod:`~peakload.core.loading` — YAML file → model, with one-line errors;
- :mod:`~peakload.core.runenv` — the environment contract between ``peakload run`` and Locust;
- :mod:`~peakload.core.net` — loopback ports and small HTTP helpers.
"""

from peakload.core.errors import (
    EXIT_FAIL,
    EXIT_INVALID,
    EXIT_PASS,
    EXIT_USAGE,
    ConfigError,
    PeakloadError,
    RunInvalid,
    UsageError,
)
from peakload.core.fields import (
    MAX_DURATION_S,
    MAX_RATE,
    MAX_USERS,
    VERSION,
    Duration,
    Model,
    Name,
    Range,
    Ratio,
    parse_duration,
)
from peakload.core.loading import load_profile, load_slo_spec
from peakload.core.profile import (
    DEFAULT_PATHS,
    ArrivalsSpec,
    ArrivalStage,
    CapacitySpec,
    CompareSpec,
    EmbeddedSpec,
    FlashSaleSpec,
    FunnelRatios,
    JourneySpec,
    Profile,
    ReplaySpec,
    ShapeSpec,
    Stage,
    TargetSpec,
)
from peakload.core.slo import SLO, SLOSpec
from peakload.core.thresholds import (
    BUSINESS_METRICS,
    COUNT_METRICS,
    LATENCY_METRICS,
    METRICS,
    RATE_METRICS,
    RATIO_METRICS,
    MetricSpec,
    Threshold,
    ThresholdEntry,
    check_scope,
    format_value,
    metric,
    parse_threshold,
    unit_of,
)

__all__ = [
    "EXIT_PASS",
    "EXIT_FAIL",
    "EXIT_USAGE",
    "EXIT_INVALID",
    "PeakloadError",
    "ConfigError",
    "UsageError",
    "RunInvalid",
    "VERSION",
    "MAX_DURATION_S",
    "MAX_USERS",
    "MAX_RATE",
    "parse_duration",
    "Duration",
    "Model",
    "Name",
    "Ratio",
    "Range",
    "load_profile",
    "load_slo_spec",
    "DEFAULT_PATHS",
    "Stage",
    "ShapeSpec",
    "TargetSpec",
    "EmbeddedSpec",
    "FunnelRatios",
    "JourneySpec",
    "FlashSaleSpec",
    "ArrivalStage",
    "ArrivalsSpec",
    "ReplaySpec",
    "CapacitySpec",
    "CompareSpec",
    "Profile",
    "SLO",
    "SLOSpec",
    "Threshold",
    "ThresholdEntry",
    "parse_threshold",
    "check_scope",
    "LATENCY_METRICS",
    "RATIO_METRICS",
    "COUNT_METRICS",
    "RATE_METRICS",
    "BUSINESS_METRICS",
    "METRICS",
    "MetricSpec",
    "metric",
    "unit_of",
    "format_value",
]
