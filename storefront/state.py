"""Per-app shared objects and small request helpers used by every handler module."""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

import aiohttp
from aiohttp import web

from .cache import CachedLoader
from .config import StorefrontConfig
from .db import Database
from .errors import ApiError
from .metrics import StorefrontMetrics

__all__ = ["State", "STATE", "state_of", "traffic_of", "run_id_of", "json_response", "json_bytes_response", "error_response"]


@dataclasses.dataclass(kw_only=True)
class State:
    """What handlers share; one per application (no module-level mutable state)."""

    config: StorefrontConfig
    db: Database
    metrics: StorefrontMetrics
    cache: CachedLoader
    # token -> user id; tokens never change owner, so a positive cache is safe.
    tokens: dict[str, int] = dataclasses.field(default_factory=dict)
    http: aiohttp.ClientSession | None = None
    gateway_url: str | None = None
    flash_skus: tuple[str, ...] = ()
    fault_rng: random.Random = dataclasses.field(default_factory=lambda: random.Random(0))
    # Mutable copies: /api/admin/faults changes them while a drill runs.
    inject_latency: dict[str, float] = dataclasses.field(default_factory=dict)
    inject_errors: dict[str, float] = dataclasses.field(default_factory=dict)


STATE = web.AppKey("storefront_state", State)


def state_of(request: web.Request) -> State:
    return request.app[STATE]


def traffic_of(request: web.Request) -> str:
    """``"shadow"`` for requests carrying the run header, else ``"real"``."""
    return request.get("traffic", "real")


def run_id_of(request: web.Request) -> str | None:
    return request.get("run_id")


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_JSON_TYPE = "application/json; charset=utf-8"


def json_bytes_response(body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # A ready Content-Type header is cheaper than content_type=/charset= parsing on the hot path.
    all_headers = {"Content-Type": _JSON_TYPE, **headers} if headers else {"Content-Type": _JSON_TYPE}
    return web.Response(body=body, status=status, headers=all_headers)


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return json_bytes_response(_dumps(data), status=status, headers=headers)


def error_response(exc: ApiError, *, headers: dict[str, str] | None = None) -> web.Response:
    """The error contract: ``{"error": code, "detail": one line}`` with ``exc.status``."""
    return json_response({"error": exc.code, "detail": exc.detail}, status=exc.status, headers=headers)
