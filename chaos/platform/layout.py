"""Where the platform keeps its files and which ports it uses (``platform.json``).

Usage::

    lay = Layout(Path(".peakload/platform"))
    spec = load_spec(lay)            # None before the first ``up``
    spec = new_spec(replicas=3)      # ports chosen once, then persisted
    save_spec(lay, spec)

The spec is written on the first ``up`` and reused afterwards, so ports and
passwords stay stable across ``up``/``down`` cycles of one state dir.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from chaos.errors import NoPlatform, StateDirError
from chaos.platform.postgres import PgNode
from chaos.platform.procs import free_ports

__all__ = [
    "DEFAULT_STATE_DIR",
    "Ports",
    "PlatformSpec",
    "Layout",
    "new_spec",
    "load_spec",
    "require_platform",
    "save_spec",
    "check_state_dir",
]

DEFAULT_STATE_DIR = Path(".peakload/platform")


@dataclass
class Ports:
    """Every loopback port the platform listens on."""

    pg: list[int]
    redis: int
    gateway: int
    storefront: list[int]
    haproxy: int
    haproxy_stats: int
    prometheus: int
    faultproxy_api: int
    proxy_pg: list[int]
    proxy_gateway: int
    proxy_redis: int
    pg_exporter: list[int]
    redis_exporter: int


@dataclass
class PlatformSpec:
    """What ``up`` builds; persisted in ``platform.json``."""

    replicas: int
    ports: Ports
    app_user: str = "shop"
    app_db: str = "shop"
    app_password: str = ""
    fault_proxy: bool = True
    seed_skus: int = 2000
    seed_users: int = 200
    gateway_latency_ms: float = 20.0
    gateway_failure_rate: float = 0.0
    extra_rule_files: list[str] = field(default_factory=list)
    extra_scrape_targets: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> PlatformSpec:
        data = dict(data)
        data["ports"] = Ports(**data["ports"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def new_spec(
    *, replicas: int = 3, base_port: int | None = None, fault_proxy: bool = True, seed_skus: int = 2000, seed_users: int = 200
) -> PlatformSpec:
    """A fresh spec: ports from ``base_port`` upwards (consecutive) or free ones picked now."""
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    n = 2 + 1 + 1 + replicas + 1 + 1 + 1 + 1 + 2 + 1 + 1 + 2 + 1
    ports = list(range(base_port, base_port + n)) if base_port else free_ports(n)
    it = iter(ports)
    take = lambda k=1: [next(it) for _ in range(k)]  # noqa: E731
    p = Ports(
        pg=take(2),
        redis=take()[0],
        gateway=take()[0],
        storefront=take(replicas),
        haproxy=take()[0],
        haproxy_stats=take()[0],
        prometheus=take()[0],
        faultproxy_api=take()[0],
        proxy_pg=take(2),
        proxy_gateway=take()[0],
        proxy_redis=take()[0],
        pg_exporter=take(2),
        redis_exporter=take()[0],
    )
    return PlatformSpec(
        replicas=replicas,
        ports=p,
        app_password=secrets.token_urlsafe(18),
        fault_proxy=fault_proxy,
        seed_skus=seed_skus,
        seed_users=seed_users,
    )


@dataclass(frozen=True)
class Layout:
    """Paths inside one state dir."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def spec_file(self) -> Path:
        return self.root / "platform.json"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pg_root(self) -> Path:
        return self.root / "pg"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def haproxy_cfg(self) -> Path:
        return self.root / "haproxy" / "haproxy.cfg"

    @property
    def prometheus_dir(self) -> Path:
        return self.root / "prometheus"

    @property
    def rules_dir(self) -> Path:
        """Drop Prometheus rule files (``*.yml``) here; ``up`` loads them."""
        return self.root / "prometheus" / "rules"

    @property
    def storefront_dir(self) -> Path:
        return self.root / "storefront"

    def pg_node(self, i: int, spec: PlatformSpec) -> PgNode:
        name = f"pg{i}"
        return PgNode(
            name=name,
            data_dir=self.pg_root / name,
            port=spec.ports.pg[i],
            socket_dir=self.pg_root / "run",
            log=self.pg_root / "logs" / f"{name}.log",
        )


def load_spec(lay: Layout) -> PlatformSpec | None:
    """The persisted spec, or None before the first ``up``; StateDirError when it is not what ``up`` wrote."""
    try:
        data = json.loads(lay.spec_file.read_text())
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise StateDirError(f"state dir {lay.root}: expected a directory, found a file") from None
    except (OSError, ValueError) as exc:  # ValueError: corrupt JSON or not UTF-8
        raise StateDirError(f"{lay.spec_file}: expected the platform spec `platform up` writes (JSON), found: {str(exc)[:200]}") from None
    try:
        return PlatformSpec.from_dict(data)
    except (TypeError, KeyError, AttributeError) as exc:
        raise StateDirError(
            f"{lay.spec_file}: expected the platform spec `platform up` writes, found another shape ({type(exc).__name__}: {exc})"
        ) from None


def require_platform(state_dir: str | Path) -> tuple[Layout, PlatformSpec]:
    """The layout and spec of the platform in ``state_dir``; NoPlatform (a RuntimeError) when none was brought up there."""
    lay = Layout(Path(state_dir))
    spec = load_spec(lay)
    if spec is None:
        raise NoPlatform(f"no platform in {lay.root}; run `peakload platform up` first")
    return lay, spec


def save_spec(lay: Layout, spec: PlatformSpec) -> None:
    """Write ``platform.json`` (mode 600: it holds the app password)."""
    lay.root.mkdir(parents=True, exist_ok=True)
    tmp = lay.spec_file.with_suffix(".tmp")
    tmp.write_text(spec.to_json())
    os.chmod(tmp, 0o600)
    tmp.replace(lay.spec_file)


def check_state_dir(root: Path) -> None:
    """Refuse a state dir the postgres user cannot reach (e.g. under a 0700 pytest tmp dir)."""
    root = Path(root).resolve()
    for parent in [*reversed(root.parents), root]:
        if parent.exists():
            mode = parent.stat().st_mode
            if os.geteuid() == 0 and not mode & 0o001:
                raise PermissionError(
                    f"state dir {root}: {parent} is not searchable by other users "
                    "(the postgres user must reach its data dirs); chmod o+x it or pick another dir"
                )
