"""What is measured and exposed: mergeable request stats, Prometheus exposition, snapshot files.

Usage::

    from exporters import StatsStore, PeakloadCollector, bucket_edges

This package never imports ``locust`` (that would monkey-patch the process);
the bridge from Locust events lives in ``scenarios/instrumentation.py``.
"""

from exporters.classify import ERROR_TYPES, STATUS_CLASSES, classify_error, status_index
from exporters.histogram import (
    DEFAULT_BUCKETS,
    HdrCounts,
    bucket_edges,
    decode_hdr,
    new_hdr,
)
from exporters.prometheus import (
    METRIC_NAMES,
    PeakloadCollector,
    metrics_app,
    start_metrics_server,
)
from exporters.settings import ExporterSettings
from exporters.stats import ARRIVAL_KEYS, BUSINESS_KEYS, SeriesTotals, StatsStore

__all__ = [
    "ARRIVAL_KEYS",
    "BUSINESS_KEYS",
    "DEFAULT_BUCKETS",
    "ERROR_TYPES",
    "ExporterSettings",
    "METRIC_NAMES",
    "STATUS_CLASSES",
    "HdrCounts",
    "PeakloadCollector",
    "SeriesTotals",
    "StatsStore",
    "bucket_edges",
    "classify_error",
    "decode_hdr",
    "metrics_app",
    "new_hdr",
    "start_metrics_server",
    "status_index",
]
