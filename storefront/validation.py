"""Input checks shared by handlers: every bad input becomes a 4xx ApiError."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from .errors import ApiError, bad_request
from .runner import malformed_reason

__all__ = [
    "MAX_QUANTITY",
    "read_json_object",
    "require_int",
    "require_str",
    "query_int",
    "query_str",
    "check_text",
    "idempotency_key",
    "SKU_RE",
    "ORDER_ID_RE",
]

MAX_QUANTITY = 100
SKU_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,31}$")
ORDER_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")
# C0 controls except tab/newline, DEL and NUL: stored text never needs them,
# and PostgreSQL rejects NUL outright (which would otherwise surface as a 500).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 naming what was wrong."""
    try:
        raw = await request.read()
    except web.RequestPayloadError as exc:
        # A body aiohttp could not decode (bad gzip/deflate, broken chunks): the client's fault.
        raise bad_request("invalid_body", f"request body could not be read: {malformed_reason(exc)}") from None
    if not raw:
        raise bad_request("invalid_json", "request body must be a JSON object, got an empty body")
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise bad_request("invalid_json", "request body must be UTF-8 encoded JSON") from None
    except (ValueError, RecursionError) as exc:
        raise bad_request("invalid_json", f"request body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(value, dict):
        raise bad_request("invalid_body", f"request body must be a JSON object, got {_type_name(value)}")
    return value


def check_text(value: str, *, field: str, max_len: int, min_len: int = 1) -> str:
    """Length, encodability and control-character checks for stored text."""
    if not min_len <= len(value) <= max_len:
        raise bad_request("invalid_field", f"{field} must be {min_len}..{max_len} characters, got {len(value)}")
    if _CONTROL.search(value):
        raise bad_request("invalid_field", f"{field} must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request("invalid_field", f"{field} must be valid Unicode text") from None
    return value


def require_str(body: dict[str, Any], field: str, *, max_len: int, min_len: int = 1) -> str:
    value = body.get(field)
    if not isinstance(value, str):
        raise bad_request("invalid_field", f"{field} must be a string, got {_type_name(value)}")
    return check_text(value, field=field, max_len=max_len, min_len=min_len)


def require_int(value: Any, *, field: str, lo: int, hi: int) -> int:
    # bool is an int subclass; true/false are not quantities.
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request("invalid_field", f"{field} must be an integer, got {_type_name(value)}")
    if not lo <= value <= hi:
        shown = str(value) if abs(value) < 10**12 else "a huge number"
        raise bad_request("invalid_field", f"{field} must be within {lo}..{hi}, got {shown}")
    return value


def query_int(request: web.Request, name: str, *, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"-?[0-9]{1,9}", raw):
        raise bad_request("invalid_query", f"{name} must be an integer within {lo}..{hi}, got {raw[:20]!r}")
    value = int(raw)
    if not lo <= value <= hi:
        raise bad_request("invalid_query", f"{name} must be within {lo}..{hi}, got {value}")
    return value


def query_str(request: web.Request, name: str, *, max_len: int) -> str:
    raw = request.query.get(name)
    if raw is None or not raw.strip():
        raise bad_request("invalid_query", f"{name} is required")
    return check_text(raw.strip(), field=name, max_len=max_len)


def idempotency_key(request: web.Request) -> str | None:
    """The ``Idempotency-Key`` header (visible ASCII, ≤128), or None when absent."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _KEY_RE.match(key):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1..128 visible ASCII characters")
    return key


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )
