"""Bounded labels for requests: status class and error type.

Usage::

    status_index(503)                                  # -> 5  (STATUS_CLASSES[5] == "5xx")
    classify_error(503, RuntimeError("HTTP 503"))      # -> "http_5xx"
    classify_error(200, CatchResponseError("no id"))   # -> "body_check"
    failure_message(ConnectionRefusedError(111, "Connection refused"))
                                                       # -> "ConnectionRefusedError: [Errno 111] Connection refused"

Classification looks at the HTTP status first, then at the exception's class
names (its MRO), so this module imports neither ``locust`` nor ``requests``
nor ``geventhttpclient`` and still recognises their exceptions.
"""

from __future__ import annotations

import re

__all__ = ["STATUS_CLASSES", "ERROR_TYPES", "status_index", "classify_error", "failure_message"]

# index = status // 100 for 100..599, 0 when there was no HTTP response
from peakload.core.records import MAX_MESSAGE_CHARS, STATUS_CLASSES  # noqa: E402 - the one definition (results format)

ERROR_TYPES: tuple[str, ...] = ("http_4xx", "http_5xx", "timeout", "connection", "body_check", "other")

_TIMEOUT_WORDS = ("timeout",)
_CONNECTION_WORDS = (
    "connection",  # ConnectionError, ConnectionRefusedError, requests' ConnectionError, NewConnectionError
    "brokenpipe",
    "remotedisconnected",
    "protocolerror",
    "gaierror",
    "herror",
    "sslerror",
    "incompleteread",
    "chunkedencodingerror",
    "badstatusline",
)
_BODY_CHECK_NAMES = {"catchresponseerror", "responseerror"}


def status_index(status: int | None) -> int:
    """Index into :data:`STATUS_CLASSES` for an HTTP status (0 = no response)."""
    if status is None or not 100 <= status < 600:
        return 0
    return status // 100


def _names(exception: BaseException | str) -> list[str]:
    """Lower-cased class names of the exception and of what it wraps.

    geventhttpclient (FastHttpUser) reports a read timeout as
    ``RetriesExceeded(original=timeout)``, a ConnectionError subclass; the
    wrapped exception (``original``, ``__cause__``, ``__context__``) is what
    tells a timeout from a refused connection.
    """
    names: list[str] = []
    seen: set[int] = set()
    todo: list[object] = [exception]
    while todo and len(seen) < 8:
        exc = todo.pop(0)
        if not isinstance(exc, BaseException) or id(exc) in seen:
            continue
        seen.add(id(exc))
        names.extend(cls.__name__.lower() for cls in type(exc).__mro__)
        todo.extend((getattr(exc, "original", None), exc.__cause__, exc.__context__))
    return names


def classify_error(status: int | None, exception: BaseException | str | None) -> str:
    """One of :data:`ERROR_TYPES` for a failed request.

    The status decides first (a 409 reported through ``resp.failure()`` is
    still ``http_4xx``); without a 4xx/5xx status, timeouts and connection
    errors are told apart by exception class; a failure on a 1xx-3xx
    response raised with ``resp.failure(...)`` is ``body_check``.
    """
    idx = status_index(status)
    if idx == 4:
        return "http_4xx"
    if idx == 5:
        return "http_5xx"
    names = _names(exception) if exception is not None else []
    if any(word in name for name in names for word in _TIMEOUT_WORDS):
        return "timeout"
    if any(word in name for name in names for word in _CONNECTION_WORDS):
        return "connection"
    if idx in (1, 2, 3) and (not names or names[0] in _BODY_CHECK_NAMES):
        return "body_check"
    if isinstance(exception, str) and idx in (1, 2, 3):
        return "body_check"  # some clients report resp.failure("...") as a plain string
    return "other"


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RAW_CHARS = 4 * MAX_MESSAGE_CHARS  # enough for a message once addresses and runs of spaces shrink; a 1 MB body is never scanned


# FastHttpSession: "URL http://h/p/1: code=404"; requests: "404 Client Error: Not Found for url: http://h/p/1"
_URL_PART = re.compile(r"URL \S+: |,? for url: \S+")


def failure_message(exception: BaseException | str) -> str:
    """A short, bounded text for a failed request: what a report lists under "failure reasons".

    ``resp.failure("...")`` (Locust's CatchResponseError) and plain strings give their text;
    any other exception ``"TypeName: text"``. Memory addresses (``0x7f...``) become ``0x....``
    (as Locust's ``StatsError.parse_error`` does), so one error does not become thousands of
    distinct messages; whitespace is collapsed and the result cut to MAX_MESSAGE_CHARS.
    """
    if isinstance(exception, str):
        text = exception
    else:
        try:
            text = str(exception)
        except Exception:  # a broken __str__ must not lose the failure
            text = ""
        if type(exception).__name__.lower() not in _BODY_CHECK_NAMES:
            text = f"{type(exception).__name__}: {text}" if text else type(exception).__name__
    text = _ADDRESS.sub("0x....", text[:_RAW_CHARS])
    # the row already names the request: drop the URL, or every product id would be a message of its own
    text = _URL_PART.sub("", text)
    text = _CONTROL.sub("", _SPACE.sub(" ", text)).strip()
    return text[:MAX_MESSAGE_CHARS] or "(no message)"
