"""Per-process state the journey shares: the dialect adapter class, the feeders, the discovered catalogue.

Each is built once per Locust process (local runner, master or worker) on
first use. Discovery asks the adapter for the catalogue over its own HTTP
session whose requests are not counted in the run's stats (they are the
pre-flight, not the load); if it fails the run stops with the reason, since
picking items the platform does not have would only measure 404s.

Usage::

    cls = shop_class()                                  # the adapter for target.dialect
    catalogue = catalogue_of(environment, shop)         # Catalogue(items=..., flash_item=...)
    row = feeder_row("users", number=3, worker=0, workers=1)   # None without a users feeder
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import gevent
from gevent.lock import Semaphore
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment
from locust.event import EventHook

from scenarios.dialects import load_dialect
from scenarios.feeders import feeder_rows, pick_row
from scenarios.settings import get_settings
from scenarios.shop import BaseShop, Catalogue

__all__ = ["shop_class", "feeder_row", "catalogue_of", "discover", "standalone_session"]

log = logging.getLogger(__name__)
_CATALOGUE_ATTR = "peakload_catalogue"
_lock = Semaphore()


def _profile_dir() -> Path:
    return Path(get_settings().profile_path).resolve().parent


@functools.lru_cache(maxsize=1)
def shop_class() -> type[BaseShop]:
    return load_dialect(get_settings().profile.target, base_dir=_profile_dir())


@functools.lru_cache(maxsize=1)
def _feeders() -> dict[str, list[dict[str, str]]]:
    return feeder_rows(get_settings().profile.target.feeders, _profile_dir())


def feeder_row(key: str, *, number: int, worker: int, workers: int) -> dict[str, str] | None:
    rows = _feeders().get(key)
    return None if not rows else pick_row(rows, number=number, worker=worker, workers=workers)


def standalone_session(base_url: str, *, request_event: EventHook | None = None) -> FastHttpSession:
    """A FastHttpSession outside any user (discovery, ``adapter check``); its requests fire ``request_event`` only."""
    return FastHttpSession(base_url, request_event=request_event or EventHook(), user=None, network_timeout=30.0, connection_timeout=5.0)


def discover(shop_cls: type[BaseShop], base_url: str, *, run_id: str, request_event: EventHook | None = None) -> Catalogue:
    """Ask the platform for its catalogue (a feeder of SKUs, when given, replaces the item list)."""
    settings = get_settings()
    profile = settings.profile
    target = profile.target
    if target.dialect == "storefront" and target.url is None:
        # the embedded storefront is seeded with embedded.skus
        target = target.model_copy(update={"skus": profile.embedded.skus})
    shop = shop_cls(standalone_session(base_url, request_event=request_event), target=target, run_id=run_id)
    flash = profile.flash_sale.sku if profile.flash_sale is not None else None
    catalogue = shop.discover(flash_sku=flash)
    skus = _feeders().get("skus")
    if skus:
        catalogue = Catalogue(
            items=tuple(r["sku"] for r in skus),
            categories=catalogue.categories,
            flash_item=catalogue.flash_item,
            flash_stock=catalogue.flash_stock,
            words=catalogue.words,
            notes=(*catalogue.notes, f"items from target.feeders.skus ({len(skus)} rows)"),
        )
    if not catalogue.items:
        raise ValueError("the platform's catalogue is empty: nothing to view or buy")
    return catalogue


def catalogue_of(environment: Environment, shop: Any) -> Catalogue:
    """The process's catalogue, discovered on first use (one discovery per process)."""
    found = environment.__dict__.get(_CATALOGUE_ATTR)
    if found is not None:
        return found
    with _lock:
        found = environment.__dict__.get(_CATALOGUE_ATTR)
        if found is None:
            try:
                found = discover(type(shop), environment.host or "", run_id=get_settings().run_id)
            except Exception as exc:  # noqa: BLE001 - any failure of a (user's) adapter stops the run with its reason
                log.error("peakload: catalogue discovery failed (%s: %s); stopping the run", type(exc).__name__, exc)
                environment.process_exit_code = 3
                if environment.runner is not None:
                    gevent.spawn(environment.runner.quit)
                found = Catalogue(items=("unknown",), categories=())
            else:
                log.info(
                    "peakload: discovered %d items, %d categories, flash item %s (stock %s)",
                    len(found.items),
                    len(found.categories),
                    found.flash_item,
                    found.flash_stock,
                )
            environment.__dict__[_CATALOGUE_ATTR] = found
    return found
