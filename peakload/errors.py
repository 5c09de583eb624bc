"""Errors the CLI turns into one-line messages and exit codes."""

__all__ = ["PeakloadError", "ConfigError", "UsageError", "RunInvalid"]


class PeakloadError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 2


class ConfigError(PeakloadError):
    """A profile / SLO spec / flag is invalid (exit 2)."""

    exit_code = 2


class UsageError(PeakloadError):
    """Wrong command-line usage (exit 2)."""

    exit_code = 2


class RunInvalid(PeakloadError):
    """The run cannot be trusted: target unreachable, generator overloaded, results incomplete (exit 3)."""

    exit_code = 3
