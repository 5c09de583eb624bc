"""A bounded canary writer that logs every acknowledged commit, and the RPO computed from its log.

Usage::

    canary = CanaryWriter(base_url="http://127.0.0.1:8080", log=Path("canary.jsonl"), rate=8, max_seconds=60)
    canary.start()
    ...                       # backups, faults, a disaster
    canary.stop()
    rpo = compute_rpo(canary.acked(), present={"ord_1", ...})

The canary is a shopper placing real orders through the storefront API
(login once, ``POST /api/orders`` with its own ``Idempotency-Key`` and
``items``). An order is *acknowledged* when the API answered 201 with an
``order_id``; each acknowledgement is appended to the log (flushed) as
``{"seq", "id", "t"}`` before the next request. It stops on its own after
``max_writes`` attempts or ``max_seconds``.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

__all__ = ["CanaryWriter", "Ack", "RpoResult", "compute_rpo", "read_acks"]


@dataclass(frozen=True)
class Ack:
    """One acknowledged commit: canary sequence number, order id, unix time of the acknowledgement."""

    seq: int
    id: str
    t: float


@dataclass(frozen=True)
class RpoResult:
    """How many acknowledged commits a recovery lost, and how much time they span."""

    acked: int
    lost: int
    lost_ids: list[str]
    last_acked_id: str | None
    last_acked_t: float | None
    last_restored_id: str | None
    last_restored_t: float | None
    rpo_seconds: float | None  # last acked − last restored ack time (0 when nothing was lost)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lost_ids"] = self.lost_ids[:20]
        return d


def read_acks(log: Path) -> list[Ack]:
    """Acknowledged commits from a canary log (a torn last line is skipped)."""
    out = []
    try:
        lines = log.read_text().splitlines()
    except FileNotFoundError:
        return []
    for ln in lines:
        try:
            d = json.loads(ln)
        except ValueError:
            continue
        if d.get("ok"):
            out.append(Ack(seq=int(d["seq"]), id=str(d["id"]), t=float(d["t"])))
    return out


def compute_rpo(acks: list[Ack], present: set[str]) -> RpoResult:
    """Compare acknowledged commits with the ids found after recovery."""
    acks = sorted(acks, key=lambda a: a.seq)
    lost = [a for a in acks if a.id not in present]
    kept = [a for a in acks if a.id in present]
    last = acks[-1] if acks else None
    last_kept = kept[-1] if kept else None
    if not acks:
        rpo = None
    elif not lost:
        rpo = 0.0
    else:
        rpo = last.t - (last_kept.t if last_kept else acks[0].t)
    return RpoResult(
        acked=len(acks),
        lost=len(lost),
        lost_ids=[a.id for a in lost],
        last_acked_id=last.id if last else None,
        last_acked_t=last.t if last else None,
        last_restored_id=last_kept.id if last_kept else None,
        last_restored_t=last_kept.t if last_kept else None,
        rpo_seconds=None if rpo is None else round(rpo, 3),
    )


class CanaryWriter:
    """A shopper placing one order at a time at ``rate`` per second, logging each acknowledgement.

    ``pause()`` returns once the request in flight has finished, so nothing
    commits while paused (used to take a consistent manifest).
    """

    def __init__(
        self,
        *,
        base_url: str,
        log: Path,
        rate: float = 8.0,
        max_seconds: float = 120.0,
        max_writes: int = 5000,
        username: str = "user00001",
        password: str = "peakload",
        run_header: str = "X-Peakload-Run",
        run_id: str = "chaos-canary",
        timeout: float = 5.0,
    ) -> None:
        self.url = urllib.parse.urlsplit(base_url)
        self.log = Path(log)
        self.rate, self.max_seconds, self.max_writes = rate, max_seconds, max_writes
        self.username, self.password = username, password
        self.headers = {"Content-Type": "application/json", run_header: run_id}
        self.timeout = timeout
        self.errors: dict[str, int] = {}
        self.attempts = 0
        self._acks: list[Ack] = []
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._busy = threading.Lock()  # held while a request is in flight
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._token: str | None = None
        self._skus: list[str] = []

    # -- control
    def start(self) -> CanaryWriter:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="canary-writer", daemon=True)
        self._thread.start()
        return self

    def pause(self, timeout: float = 10.0) -> None:
        self._running.clear()
        if self._busy.acquire(timeout=timeout):  # the request in flight (if any) has finished
            self._busy.release()

    def resume(self) -> None:
        self._running.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._running.set()
        if self._thread:
            self._thread.join(timeout)

    def acked(self) -> list[Ack]:
        return list(self._acks)

    def wait_acks(self, n: int, timeout: float) -> bool:
        """Poll until at least ``n`` commits were acknowledged."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self._acks) >= n:
                return True
            time.sleep(0.05)
        return False

    # -- HTTP
    def request(self, method: str, path: str, body: dict | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=self.timeout)
        h = dict(self.headers)
        if self._token:
            h["Authorization"] = f"Bearer {self._token}"
        h.update(headers or {})
        try:
            self._conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
            resp = self._conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self._conn.close()
            self._conn = None
            raise ConnectionError(type(exc).__name__) from None
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return resp.status, data if isinstance(data, dict) else {"items": data}

    @property
    def logged_in(self) -> bool:
        return self._token is not None

    def pay(self, order_id: str) -> tuple[int, dict]:
        """Pay one order (its own Idempotency-Key); (HTTP status, body)."""
        return self.request("POST", f"/api/orders/{order_id}/payment", {}, {"Idempotency-Key": f"pay-{uuid.uuid4().hex}"})

    def prepare(self) -> None:
        """Log in and pick SKUs with stock (called on the first write)."""
        code, data = self.request("POST", "/api/sessions", {"username": self.username, "password": self.password})
        if code != 200 or "token" not in data:
            raise ConnectionError(f"login HTTP {code}")
        self._token = data["token"]
        code, data = self.request("GET", "/api/categories/1/products?page=1&size=50")
        items = data.get("items") or data.get("products") or []
        self._skus = [p["sku"] for p in items if isinstance(p, dict) and p.get("stock", 1) > 5] or ["SKU-000001"]

    def place_order(self, seq: int) -> Ack:
        """Place one order; the Ack once the API answered 201 (ConnectionError otherwise)."""
        key = f"canary-{uuid.uuid4().hex}"
        sku = self._skus[seq % len(self._skus)]
        body = {"address": {"name": "Canary", "city": "Hangzhou"}, "items": [{"sku": sku, "quantity": 1}]}
        code, data = self.request("POST", "/api/orders", body, {"Idempotency-Key": key})
        if code == 201 and data.get("order_id"):
            return Ack(seq=seq, id=str(data["order_id"]), t=time.time())
        raise ConnectionError(f"HTTP {code} {data.get('error', '')}".strip())

    def _loop(self) -> None:
        start = time.monotonic()
        interval = 1.0 / self.rate
        next_t = start
        with open(self.log, "a", buffering=1) as out:
            while not self._stop.is_set() and self.attempts < self.max_writes:
                if time.monotonic() - start > self.max_seconds:
                    break
                with self._busy:
                    if not self._running.is_set():
                        paused = True
                    else:
                        paused = False
                        self._attempt(out)
                if paused:
                    self._running.wait(0.1)
                    next_t = time.monotonic()
                    continue
                next_t += interval
                delay = next_t - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_t = time.monotonic()  # late: do not burst to catch up
        if self._conn is not None:
            self._conn.close()

    def _attempt(self, out: TextIO) -> None:
        self.attempts += 1
        seq = self.attempts
        try:
            if self._token is None:
                self.prepare()
            ack = self.place_order(seq)
            self._acks.append(ack)
            out.write(json.dumps({"ok": True, **asdict(ack)}) + "\n")
        except ConnectionError as exc:
            reason = str(exc)
            self.errors[reason] = self.errors.get(reason, 0) + 1
            out.write(json.dumps({"ok": False, "seq": seq, "t": time.time(), "error": reason}) + "\n")
            if reason.startswith("HTTP 401"):
                self._token = None
