"""Errors of the chaos room that reach a user; each is a peakload error, so the CLI prints one line and exits with its code.

Usage::

    try:
        chaos_validate("experiments/mine.json")
    except ChaosError as exc:
        print(exc)  # experiments/mine.json: expected a JSON object (a Chaos Toolkit experiment), found an empty file

Two of them keep the builtin type they replace as a second base (``FileNotFoundError``,
``RuntimeError``), so callers written against the builtin keep working.
"""

from __future__ import annotations

from peakload.core import ConfigError, PeakloadError, UsageError

__all__ = ["ChaosError", "ExperimentNotFound", "ExperimentFileError", "StateDirError", "NoPlatform"]


class ChaosError(PeakloadError):
    """Base class for everything this room raises at a user (exit 2 unless overridden)."""


class ExperimentNotFound(ChaosError, UsageError, FileNotFoundError):
    """The experiment named on the command line is neither a file nor a bundled experiment (exit 2)."""


class ExperimentFileError(ChaosError, ConfigError):
    """An experiment file cannot be read as an experiment, or its peakload budgets are malformed (exit 2)."""


class StateDirError(ChaosError, UsageError):
    """``--state-dir`` is not a directory that can hold a platform or a drill site (exit 2)."""


class NoPlatform(ChaosError, UsageError, RuntimeError):
    """No (serving) platform in the state dir: run ``peakload platform up`` first (exit 2)."""
