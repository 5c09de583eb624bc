"""The core floor: contracts every room shares (inputs, errors, formats). No room behaviour lives here.

Modules:

- :mod:`peakload.core.inputs` — the one layer that reads files and checks
  paths, URLs, ports and numbers given by a user; every failure becomes a
  one-line :class:`~peakload.errors.ConfigError`/``UsageError``.
"""

__all__: list[str] = []
