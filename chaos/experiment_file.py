"""Find and read experiment files: a bundled name or a path in, a JSON object out, or one error line naming the file.

Usage::

    path = experiment_path("replica-kill")          # chaos/experiments/replica-kill.json
    experiment = load_experiment_file(path)         # dict; ExperimentFileError when it is not an experiment

Chaos Toolkit's own loader lets a missing, empty, binary or non-UTF-8 file, corrupt
JSON or a top-level array escape as tracebacks; this reads the bytes first and says
what was expected and what was found.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos.errors import ExperimentFileError, ExperimentNotFound

__all__ = ["EXPERIMENTS_DIR", "SUFFIXES", "list_experiments", "experiment_path", "load_experiment_file"]

EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"
SUFFIXES = (".json", ".yaml", ".yml")
_WHAT = "a Chaos Toolkit experiment (an object at the top level)"


def list_experiments() -> list[str]:
    """Names of the bundled experiments (file stems)."""
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.json")) + sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))


def experiment_path(name_or_path: str | Path) -> Path:
    """A bundled experiment by name (``replica-kill``) or any experiment file by path.

    Raises ExperimentNotFound (also a FileNotFoundError) when it is neither.
    """
    p = Path(name_or_path)
    if p.is_dir():
        raise ExperimentFileError(f"{p}: expected an experiment file ({', '.join(SUFFIXES)}), found a directory")
    if p.exists():
        return p
    for ext in SUFFIXES:
        candidate = EXPERIMENTS_DIR / f"{name_or_path}{ext}"
        if candidate.is_file():
            return candidate
    raise ExperimentNotFound(
        f"no experiment {str(name_or_path)!r}: no such file and no bundled experiment of that "
        f"name (bundled: {', '.join(list_experiments())})"
    )


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def load_experiment_file(path: str | Path) -> dict[str, Any]:
    """The experiment in ``path`` as a dict; ExperimentFileError (exit 2) naming the file and what was wrong."""
    p = Path(path)
    if p.suffix not in SUFFIXES:
        raise ExperimentFileError(f"{p}: expected an experiment file ending in {', '.join(SUFFIXES)}, got {p.suffix or 'no suffix'!r}")
    try:
        raw = p.read_bytes()
    except IsADirectoryError:
        raise ExperimentFileError(f"{p}: expected an experiment file, found a directory") from None
    except OSError as exc:
        raise ExperimentFileError(f"{p}: cannot read it: {exc.strerror or exc}") from None
    if not raw.strip():
        raise ExperimentFileError(f"{p}: expected {_WHAT}, found an empty file")
    if b"\x00" in raw:
        raise ExperimentFileError(f"{p}: expected {_WHAT} as text, found binary data (NUL bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExperimentFileError(f"{p}: expected UTF-8 text, found byte 0x{raw[exc.start]:02x} at offset {exc.start}") from None
    if p.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExperimentFileError(
                f"{p}: expected valid JSON, found an error at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = " ".join(str(exc).split())[:200]
            raise ExperimentFileError(f"{p}: expected valid YAML, found: {first}") from None
    if not isinstance(data, dict):
        raise ExperimentFileError(f"{p}: expected {_WHAT}, found {_kind(data)}")
    return data
