"""The one error tree of the suite; each error carries the exit code the CLI ends with.

Usage::

    raise ConfigError(f"{path}: shape.stages[0].duration: expected a finite duration, got inf")

The CLI prints ``peakload <command>: error: <message>`` (one line) and exits
with ``exc.exit_code``. Rooms raise these (or subclasses in their own
``errors.py``); nothing the user can cause reaches them as a traceback.

::

    PeakloadError              exit 2 unless a subclass says otherwise
    ├── ConfigError            exit 2  a profile, SLO spec, experiment or results file is invalid
    ├── UsageError             exit 2  a flag, path or URL on the command line is wrong
    └── RunInvalid             exit 3  the run cannot be trusted: target unreachable, generator
                                       overloaded, results incomplete
"""

__all__ = ["EXIT_PASS", "EXIT_FAIL", "EXIT_USAGE", "EXIT_INVALID", "PeakloadError", "ConfigError", "UsageError", "RunInvalid"]

EXIT_PASS = 0  # the run completed and every judged threshold passed (or, by design, none was declared: thresholds: none)
EXIT_FAIL = 1  # a threshold failed, an abort threshold stopped the run, or compare found a regression
EXIT_USAGE = 2  # usage or configuration error: one line naming the file, field or flag; nothing written
EXIT_INVALID = 3  # the run (or comparison) cannot be trusted, or nothing was judged


class PeakloadError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_USAGE


class ConfigError(PeakloadError):
    """A profile / SLO spec / experiment / results file is invalid (exit 2)."""

    exit_code = EXIT_USAGE


class UsageError(PeakloadError):
    """Wrong command-line usage: a flag, path or URL (exit 2)."""

    exit_code = EXIT_USAGE


class RunInvalid(PeakloadError):
    """The run cannot be trusted: target unreachable, generator overloaded, results incomplete (exit 3)."""

    exit_code = EXIT_INVALID
