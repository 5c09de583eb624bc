"""Load and validate the YAML files: file → mapping (``peakload.core.inputs``) → model → one-line errors.

Usage::

    profile = load_profile("profiles/smoke.yaml")
    slo = load_slo_spec("profiles/slo.yaml")

Any problem raises :class:`~peakload.core.errors.ConfigError` naming the file, the field path and
what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from peakload.core.errors import ConfigError
from peakload.core.fields import VERSION
from peakload.core.inputs import read_yaml
from peakload.core.profile import Profile
from peakload.core.slo import SLOSpec

__all__ = ["load_profile", "load_slo_spec"]

# ---------------------------------------------------------------- loading


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "str", "ThresholdEntry", "list[")):
            continue  # pydantic union/validator branch names are noise to a user
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    data = read_yaml(path, what=what)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'version: {VERSION}' at the top, got {type(data).__name__}")
    if data.get("version") != VERSION:
        got = data.get("version")
        shown = got if not isinstance(got, str) or len(got) <= 40 else got[:40] + "…"
        raise ConfigError(f"{path}: version: expected {VERSION!r}, got {shown!r}")
    return data


def _shown(got: Any) -> str:
    text = repr(got)
    return text if len(text) <= 80 else text[:77] + "…"


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], path: Path, data: dict[str, Any]) -> M:
    try:
        return model.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        suffix = ""
        if err["type"] not in ("value_error", "missing") and not isinstance(got, (dict, list)):
            suffix = f", got {_shown(got)}"
        raise ConfigError(f"{path}: {_format_loc(err['loc'])}: {msg}{suffix}") from None


def load_profile(path: str | Path) -> Profile:
    """Read and validate a traffic profile. Raises ConfigError (one line)."""
    p = Path(path)
    return _validate(Profile, p, _read_yaml(p, "profile"))


def load_slo_spec(path: str | Path) -> SLOSpec:
    """Read and validate the SLO spec. Raises ConfigError naming the SLO and field."""
    p = Path(path)
    data = _read_yaml(p, "SLO spec")
    try:
        return SLOSpec.model_validate({**data, "source": str(p)})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"]
        where = _format_loc(loc)
        if len(loc) >= 2 and loc[0] == "slos" and isinstance(loc[1], int):
            slos = data.get("slos") or []
            name = slos[loc[1]].get("name") if loc[1] < len(slos) and isinstance(slos[loc[1]], dict) else None
            rest = _format_loc(loc[2:]) if len(loc) > 2 else "(slo)"
            where = f'SLO "{name}": {rest}' if name else where
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        suffix = f", got {_shown(got)}" if err["type"] not in ("value_error", "missing") and not isinstance(got, (dict, list)) else ""
        raise ConfigError(f"{p}: {where}: {msg}{suffix}") from None
