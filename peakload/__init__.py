"""peakload: rehearse an e-commerce pre-sale peak. The CLI and run orchestration; config models."""

from peakload.core import (
    ConfigError,
    PeakloadError,
    Profile,
    RunInvalid,
    SLOSpec,
    UsageError,
    load_profile,
    load_slo_spec,
)

__all__ = ["Profile", "SLOSpec", "load_profile", "load_slo_spec", "ConfigError", "PeakloadError", "RunInvalid", "UsageError"]
__version__ = "0.1.0"
