"""Which adapter speaks the target's dialect: ``storefront``, ``oscar`` or a user's ``module:Class``.

No Locust import: ``peakload run`` loads the adapter class before the load
(to refuse a wrong one in one line and to ask it for the books afterwards),
and the Locust process loads the same class for its users.

Usage::

    cls = load_dialect(profile.target, base_dir=Path("profiles"))   # ConfigError naming target.dialect
    cls.OFFERS, cls.BOOKS, cls.ISOLATES
    not_offered(cls)          # ["pay", ...]: steps the journey skips and the report shows as n/a
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

from peakload.core import ConfigError, TargetSpec
from peakload.core.steps import STEPS
from scenarios.shop import BaseShop, Shop

__all__ = ["load_dialect", "not_offered", "BUILTIN_DIALECTS"]

BUILTIN_DIALECTS = {"storefront": "scenarios.client:ShopClient", "oscar": "scenarios.oscar:OscarShop"}
_REQUIRED = [name for name, _ in inspect.getmembers(Shop, inspect.isfunction) if not name.startswith("_")]


def load_dialect(target: TargetSpec, *, base_dir: Path | None = None) -> type[BaseShop]:
    """The adapter class for ``target.dialect``; ``base_dir`` (the profile's folder) is importable first."""
    spec = BUILTIN_DIALECTS.get(target.dialect, target.dialect)
    module_name, _, class_name = spec.partition(":")
    where = "target.dialect"
    if base_dir is not None and target.dialect not in BUILTIN_DIALECTS:
        folder = str(base_dir.resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"{where}: cannot import {module_name!r} ({exc}); expected storefront, oscar, or module:Class importable "
            "from the profile's folder or an installed package"
        ) from None
    except Exception as exc:  # a user's module that fails while importing: one line, not a traceback
        raise ConfigError(f"{where}: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        raise ConfigError(f"{where}: {module_name!r} has no class {class_name!r}")
    missing = [m for m in _REQUIRED if not callable(getattr(cls, m, None))]
    if missing:
        raise ConfigError(f"{where}: {spec} lacks {', '.join(missing)} (the Shop protocol, docs/adapters.md)")
    if not issubclass(cls, BaseShop):
        raise ConfigError(f"{where}: {spec} must subclass scenarios.shop.BaseShop (docs/adapters.md)")
    unknown = sorted(set(cls.OFFERS) - set(STEPS))
    if unknown:
        raise ConfigError(f"{where}: {spec}.OFFERS names unknown step {unknown[0]!r}; expected some of {', '.join(STEPS)}")
    bad_paths = sorted(set(target.paths) - set(cls.PATHS))
    if bad_paths:
        raise ConfigError(f"target.paths: unknown key {bad_paths[0]!r} for dialect {target.dialect}; expected one of {sorted(cls.PATHS)}")
    return cls


def not_offered(cls: type[BaseShop]) -> list[str]:
    """The journey steps an adapter does not offer, in journey order."""
    return [s for s in STEPS if s not in cls.OFFERS]
