"""Your own locustfile under peakload: the journey marker, the run header, and how your classes are adopted.

``peakload run --locustfile FILE`` (or ``locustfile:`` in the profile) runs
the ``User``/``HttpUser``/``FastHttpUser`` classes of ``FILE`` beside
:mod:`scenarios.plugin` (instrumentation, the profile's shape or arrivals).
Nothing in ``FILE`` has to import peakload for a closed-model profile. For an
open-model profile (``arrivals``) mark the one method that is a whole visit::

    from locust import FastHttpUser
    from scenarios.custom import journey

    class Buyer(FastHttpUser):
        @journey                      # one arrival = one call of this method
        def visit(self):
            self.client.get("/api/home")
            self.client.post("/api/cart/items", json={"sku": "SKU-1", "qty": 1})

Under ``arrivals`` each marked class serves arrivals from the pool: the
method starts at the arrival's scheduled instant, its first request reports
the intended-start latency (its service time goes to ``service_hdr``), an
arrival that finds no idle user is counted as dropped. Under ``shape`` the
class runs its own ``tasks`` as Locust would; ``@journey`` alone (no tasks)
then makes the marked method the class's only task.

The run header (``target.run_header``, shadow traffic) is added to every
``FastHttpUser``/``HttpUser`` request; a custom client adds
:func:`run_headers` itself.

Attribution is per greenlet: requests a journey makes from greenlets it
spawns itself are counted, but report their service time only.

``python -m scenarios.custom FILE`` prints what ``peakload run`` needs to know
about a locustfile (its user classes, their marked journey, weights, shapes)
as JSON, or one line on stderr and exit 2 when the file cannot be loaded.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from gevent import getcurrent
from locust import HttpUser, User
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.exception import RescheduleTask, RescheduleTaskImmediately, StopUser
from locust.user.users import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from scenarios.arrivals import arrival_state
from scenarios.bridge import LATENESS_KEY, SERVICE_TIME_KEY
from scenarios.settings import get_settings

__all__ = ["journey", "journey_method", "run_headers", "adopt", "describe_locustfile", "JOURNEY_ATTR"]

JOURNEY_ATTR = "peakload_journey"
F = TypeVar("F", bound=Callable[..., Any])
_ADOPTED = "_peakload_adopted"


def journey(fn: F) -> F:
    """Mark the method of a user class that is one whole visit (one arrival of the open model)."""
    if not callable(fn):
        raise TypeError("@journey marks a method of a User class")
    setattr(fn, JOURNEY_ATTR, True)
    return fn


def journey_method(cls: type) -> str | None:
    """The name of ``cls``'s ``@journey`` method (inherited ones count); None without one.

    Raises ValueError when the class marks more than one.
    """
    marked = sorted(name for name, member in inspect.getmembers(cls, callable) if getattr(member, JOURNEY_ATTR, False))
    if len(marked) > 1:
        raise ValueError(f"{cls.__name__} marks {len(marked)} methods with @journey ({', '.join(marked)}); expected one")
    return marked[0] if marked else None


def run_headers() -> dict[str, str]:
    """The shadow-traffic header of this run (``{target.run_header: run_id}``), for a client of your own."""
    settings = get_settings()
    return {settings.profile.target.run_header: settings.run_id}


# ---------------------------------------------------------------- open model for any class

# greenlet of a pool user → [intended start of the armed arrival, or None]
_ARMED: dict[Any, list[float | None]] = {}


def _wrap_request_event(environment: Environment) -> None:
    """Report a pool user's first request of each arrival from its intended start (once per environment).

    Wraps ``events.request.fire`` (the hook every Locust client fires), so any
    client counts; requests of other greenlets pass through unchanged.
    """
    hook = environment.events.request
    if getattr(hook, "_peakload_intended", False):
        return
    inner = hook.fire
    armed = _ARMED

    def fire(**kw: Any) -> None:
        slot = armed.get(getcurrent())
        if slot is not None:
            service = kw.get("response_time") or 0.0
            intended, slot[0] = slot[0], None
            kw["context"] = {**(kw.get("context") or {}), SERVICE_TIME_KEY: service}
            if intended is not None:
                start = kw.get("start_time") or (time.time() - service / 1000.0)
                lag_ms = (start - intended) * 1000.0
                if lag_ms > 0:
                    kw["response_time"] = service + lag_ms
                # the scheduler's lateness: when the user took the arrival (the journey's code may wait before its first request)
                kw["context"][LATENESS_KEY] = max((min(slot[1] or start, start) - intended) * 1000.0, 0.0)
        inner(**kw)

    hook.fire = fire  # type: ignore[method-assign]
    hook._peakload_intended = True  # type: ignore[attr-defined]


def _serve_arrivals(user: User) -> None:
    """The only task of an adopted class under ``arrivals``: wait for an arrival, run the journey, repeat."""
    state = arrival_state(user.environment)
    if state is None:
        raise StopUser()
    take = state.pool.take
    visit = getattr(user, type(user)._peakload_journey)  # type: ignore[attr-defined]
    me = getcurrent()
    slot = _ARMED[me] = [None, None]  # [intended start, when this user took the arrival]
    try:
        while True:
            if user._state == LOCUST_STATE_STOPPING:
                raise StopUser()
            user._state = LOCUST_STATE_WAITING  # like TaskSet.wait(): Locust may kill an idle user at once
            intended = take()
            user._state = LOCUST_STATE_RUNNING
            slot[0], slot[1] = intended, time.time()
            try:
                visit()
            except (RescheduleTask, RescheduleTaskImmediately):
                pass  # the journey ended itself early
            slot[0] = None
    finally:
        _ARMED.pop(me, None)


def _with_run_header(cls: type[User], header: str, run_id: str) -> None:
    if issubclass(cls, FastHttpUser):
        cls.default_headers = {**(cls.default_headers or {}), header: run_id}
        return
    if issubclass(cls, HttpUser):
        original = cls.on_start

        def on_start(self: HttpUser) -> None:
            self.client.headers[header] = run_id
            original(self)

        cls.on_start = on_start  # type: ignore[method-assign]


def adopt(environment: Environment) -> None:
    """Fit the run's user classes to the profile: run header on every request; the pool under ``arrivals``.

    Called on ``events.init`` by :mod:`scenarios.plugin` (once per process, idempotent per class).
    """
    settings = get_settings()
    open_model = settings.profile.arrivals is not None
    for cls in environment.user_classes:
        if getattr(cls, _ADOPTED, False):
            continue
        setattr(cls, _ADOPTED, True)
        _with_run_header(cls, settings.profile.target.run_header, settings.run_id)
        name = journey_method(cls)
        if open_model:
            if name is None:  # peakload run refuses this before the load; plain locust stops here
                raise ValueError(f"{cls.__name__} has no @journey method (needed by the profile's arrivals)")
            cls._peakload_journey = name  # type: ignore[attr-defined]
            cls.tasks = [_serve_arrivals]
        elif name is not None and not cls.tasks:
            cls.tasks = [getattr(cls, name)]
    if open_model:
        _wrap_request_event(environment)


# ---------------------------------------------------------------- what peakload run asks before the load


def describe_locustfile(path: str) -> dict[str, Any]:
    """The user classes and shapes Locust finds in ``path``, with each class's journey, weight and fixed_count."""
    from locust.util.load_locustfile import load_locustfile

    users, shapes = load_locustfile(path)
    classes = []
    for name, cls in sorted(users.items()):
        try:
            marked = journey_method(cls)
            problem = None
        except ValueError as exc:
            marked, problem = None, str(exc)
        classes.append(
            {
                "name": name,
                "journey": marked,
                "problem": problem,
                "weight": getattr(cls, "weight", 1),
                "fixed_count": getattr(cls, "fixed_count", 0),
                "base": next((b.__name__ for b in cls.__mro__ if b in (FastHttpUser, HttpUser)), "User"),
                "has_tasks": bool(cls.tasks),
            }
        )
    return {"classes": classes, "shapes": sorted(type(s).__name__ for s in shapes)}


def _main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m scenarios.custom LOCUSTFILE", file=sys.stderr)
        return 2
    try:
        info = describe_locustfile(argv[0])
    except SystemExit as exc:  # Locust's loader exits on a file it cannot import
        print(f"cannot load it (exit {exc.code})", file=sys.stderr)
        return 2
    except BaseException as exc:  # the user's module failed while importing: one line for peakload run
        where = ""
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == argv[0]:
                where = f" (line {tb.tb_lineno})"
            tb = tb.tb_next
        if isinstance(exc, SyntaxError) and exc.lineno:
            where = f" (line {exc.lineno})"
        print(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{where}"[:300], file=sys.stderr)
        return 2
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
