"""``python -m storefront serve|gateway|reconcile|calibrate`` — see ``--help`` of each."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import sys

from .config import GatewayConfig, SeedConfig, StorefrontConfig, parse_route_floats
from .db import Database
from .reconcile import gateway_summary, reconcile
from .server import gateway_forever, serve_forever


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def _port(text: str) -> int:
    value = _nonneg_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0..65535, got {value}")
    return value


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _ratio(text: str) -> float:
    value = _nonneg_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a ratio within 0..1, got {text}")
    return value


def _ms_range(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(":")
    low = _nonneg_float(lo)
    high = _nonneg_float(hi) if hi else low
    if high < low:
        raise argparse.ArgumentTypeError(f"expected MIN:MAX with MIN <= MAX, got {text!r}")
    return low, high


def _db_url(text: str) -> str:
    if not text.startswith(("sqlite://", "postgresql://", "postgres://", "postgresql+asyncpg://")):
        raise argparse.ArgumentTypeError(f"expected sqlite:///PATH or postgresql://..., got {text!r}")
    return text


def _add_gateway_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gateway-latency-ms", type=_nonneg_float, default=20.0, help="mean charge latency")
    p.add_argument("--gateway-jitter-ms", type=_nonneg_float, default=10.0, help="+/- uniform jitter")
    p.add_argument("--gateway-failure-rate", type=_ratio, default=0.02, help="share of charges declined, 0..1")
    p.add_argument("--gateway-seed", type=int, default=1111)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m storefront", description="peakload reference storefront")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the storefront (seeds an empty database)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=_port, default=8080, help="0 = any free port")
    s.add_argument("--port-file", help="write the base URL here once listening (atomic)")
    s.add_argument("--db", type=_db_url, default="sqlite:///storefront.db", help="sqlite:///PATH or postgresql://...")
    s.add_argument("--reset", action="store_true", help="drop and re-create all tables first")
    s.add_argument("--skus", type=_nonneg_int, default=10_000)
    s.add_argument("--categories", type=_nonneg_int, default=20)
    s.add_argument("--users", type=_nonneg_int, default=200, help="seeded users user00001.. (password 'peakload')")
    s.add_argument("--flash-skus", type=_nonneg_int, default=3)
    s.add_argument("--flash-stock", type=_nonneg_int, default=50)
    s.add_argument("--seed", type=int, default=1111)
    s.add_argument("--gateway-url", help="use this gateway instead of the embedded one")
    _add_gateway_flags(s)
    s.add_argument("--cache-ttl", type=_nonneg_float, default=1.0, help="seconds; 0 disables the cache")
    s.add_argument("--redis-url", help="shared Redis cache, e.g. redis://127.0.0.1:6379/0 (default: in-process)")
    s.add_argument("--run-header", default="X-Peakload-Run")
    s.add_argument("--db-pool-size", type=int, default=10)
    s.add_argument("--password-iterations", type=int, default=10_000)
    s.add_argument(
        "--pending-retry-after", type=_nonneg_float, default=10.0, help="re-drive payments pending longer than this many seconds"
    )
    s.add_argument("--sweep-interval", type=_nonneg_float, default=2.0, help="seconds between pending-payment sweeps (0 = off)")
    s.add_argument("--admin-token", help="require this bearer token on /api/admin/*")
    s.add_argument(
        "--inject-latency",
        action="append",
        default=[],
        metavar="ROUTE=SECONDS",
        help="add latency to a route template, e.g. /api/products/{sku}=0.2 (repeatable)",
    )
    s.add_argument(
        "--inject-errors",
        action="append",
        default=[],
        metavar="ROUTE=RATIO",
        help="answer 503 on this share of a route's requests (repeatable)",
    )
    s.add_argument(
        "--exit-with-parent", action="store_true", help="shut down when the process that started this one dies (no orphan after a SIGKILL)"
    )
    s.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    s.add_argument("--access-log", metavar="FILE", help="append a combined-format access log here (off by default)")

    g = sub.add_parser("gateway", help="run the payment-gateway simulator alone")
    g.add_argument("--host", default="127.0.0.1")
    g.add_argument("--port", type=_port, default=8090)
    g.add_argument("--port-file")
    g.add_argument("--latency-ms", dest="gateway_latency_ms", type=_nonneg_float, default=20.0)
    g.add_argument("--jitter-ms", dest="gateway_jitter_ms", type=_nonneg_float, default=10.0)
    g.add_argument("--failure-rate", dest="gateway_failure_rate", type=_ratio, default=0.02)
    g.add_argument("--seed", dest="gateway_seed", type=int, default=1111)
    g.add_argument("--exit-with-parent", action="store_true", help="shut down when the parent process dies")

    c = sub.add_parser("calibrate", help="run the calibration target (known latency with periodic full stalls)")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=_port, default=8070, help="0 = any free port")
    c.add_argument("--port-file", help="write the base URL here once listening (atomic)")
    c.add_argument(
        "--service-ms",
        type=_ms_range,
        default=(50.0, 350.0),
        metavar="MIN:MAX",
        help="service time uniform on MIN..MAX ms (MIN alone = constant; default: %(default)s)",
    )
    c.add_argument("--stall", type=_nonneg_float, default=1.0, help="seconds every response is held in each stall")
    c.add_argument("--period", type=_nonneg_float, default=10.0, help="seconds from one stall start to the next")
    c.add_argument("--sequence", choices=["golden", "random"], default="golden", help="service-time sequence")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--exit-with-parent", action="store_true", help="shut down when the parent process dies")

    r = sub.add_parser("reconcile", help="print the reconciliation JSON (docs/contracts.md §4)")
    r.add_argument("--db", type=_db_url, required=True)
    r.add_argument("--run-id")
    r.add_argument("--gateway-url", help="also ask the gateway for its charge counts")
    return parser


def _gateway_config(args: argparse.Namespace) -> GatewayConfig:
    return GatewayConfig(
        latency_ms=args.gateway_latency_ms, jitter_ms=args.gateway_jitter_ms, failure_rate=args.gateway_failure_rate, seed=args.gateway_seed
    )


def _serve_config(args: argparse.Namespace) -> StorefrontConfig:
    if args.redis_url and importlib.util.find_spec("redis") is None:
        raise ValueError("--redis-url needs the 'redis' package (pip install 'redis>=5,<9')")
    if args.access_log:
        try:
            open(args.access_log, "a").close()  # refused now, with its reason, not after the seed
        except OSError as exc:
            raise ValueError(f"--access-log {args.access_log}: cannot write: {exc.strerror or exc}") from None
    return StorefrontConfig(
        db_url=args.db,
        seed=SeedConfig(
            skus=args.skus,
            categories=args.categories,
            users=args.users,
            flash_skus=args.flash_skus,
            flash_stock=args.flash_stock,
            seed=args.seed,
        ),
        gateway_url=args.gateway_url,
        cache_ttl_s=args.cache_ttl,
        redis_url=args.redis_url,
        run_header=args.run_header,
        db_pool_size=args.db_pool_size,
        password_iterations=args.password_iterations,
        admin_token=args.admin_token,
        inject_latency=parse_route_floats(args.inject_latency, what="--inject-latency"),
        inject_errors=parse_route_floats(args.inject_errors, what="--inject-errors"),
        reset=args.reset,
        pending_retry_after_s=args.pending_retry_after,
        sweep_interval_s=args.sweep_interval,
        access_log=args.access_log,
    )


async def _reconcile(args: argparse.Namespace) -> dict:
    database = Database(args.db, pool_size=2)
    try:
        summary = await gateway_summary(args.gateway_url.rstrip("/"), args.run_id) if args.gateway_url else None
        return await reconcile(database, args.run_id, gateway=summary)
    finally:
        await database.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "calibrate":
        return _calibrate(parser, args)
    try:
        # Config errors (bad ROUTE=SECONDS, out-of-range values) exit 2 like argparse's.
        gateway = _gateway_config(args) if args.command != "reconcile" else None
        config = _serve_config(args) if args.command == "serve" else None
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    try:
        if config is not None and gateway is not None:
            logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            asyncio.run(
                serve_forever(
                    config,
                    host=args.host,
                    port=args.port,
                    gateway=gateway,
                    port_file=args.port_file,
                    exit_with_parent=args.exit_with_parent,
                )
            )
        elif gateway is not None:
            asyncio.run(
                gateway_forever(gateway, host=args.host, port=args.port, port_file=args.port_file, exit_with_parent=args.exit_with_parent)
            )
        else:
            print(json.dumps(asyncio.run(_reconcile(args)), indent=2))
    except OSError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _calibrate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .calibration import CalibrationConfig, calibrate_forever

    try:
        config = CalibrationConfig(
            service_min=args.service_ms[0] / 1000,
            service_max=args.service_ms[1] / 1000,
            stall=args.stall,
            period=args.period,
            sequence=args.sequence,
            seed=args.seed,
        )
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    try:
        asyncio.run(
            calibrate_forever(config, host=args.host, port=args.port, port_file=args.port_file, exit_with_parent=args.exit_with_parent)
        )
    except OSError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
