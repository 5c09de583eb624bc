"""peakload reference storefront: an aiohttp shop with a payment-gateway simulator.

Imports only its own code. Start it with ``python -m storefront serve --port 0
--port-file url.txt`` or in-process with :func:`start_storefront`.
"""

from .app import create_app
from .config import GatewayConfig, SeedConfig, StorefrontConfig
from .db import Database, engine_url
from .gateway import GatewaySimulator, create_gateway_app
from .reconcile import reconcile
from .server import RunningStorefront, start_gateway, start_storefront

__all__ = [
    "create_app",
    "create_gateway_app",
    "start_storefront",
    "start_gateway",
    "RunningStorefront",
    "StorefrontConfig",
    "SeedConfig",
    "GatewayConfig",
    "GatewaySimulator",
    "Database",
    "engine_url",
    "reconcile",
]
