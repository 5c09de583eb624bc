"""Small, pure PromQL helpers: label matchers, ``le`` formatting, durations.

Usage::

    selector("storefront_http_requests_total", {"method": "GET"}, route=["/a", "/b/{id}"])
    # 'storefront_http_requests_total{method="GET",route=~"/a|/b/\\\\{id\\\\}"}'
    format_le(2.0)  # "2.0" — exactly as prometheus-client renders the bucket edge
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["quote", "quote_meta", "format_le", "format_number", "format_duration", "selector", "matcher"]

# Go's regexp.QuoteMeta escapes exactly these (Prometheus regexes are RE2).
_REGEX_SPECIAL = set(r"\.+*?()|[]{}^$")


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def quote_meta(value: str) -> str:
    """Escape RE2 metacharacters like Go's ``regexp.QuoteMeta``: ``/p/{sku}`` → ``/p/\\{sku\\}``."""
    return "".join("\\" + ch if ch in _REGEX_SPECIAL else ch for ch in value)


def format_le(value: float) -> str:
    """Render a bucket edge exactly as prometheus-client's ``floatToGoString`` does (``0.3``, ``2.0``, ``+Inf``)."""
    d = float(value)
    if math.isinf(d):
        return "+Inf" if d > 0 else "-Inf"
    if math.isnan(d):
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    if d > 0 and dot > 6:  # Go switches to exponents sooner than Python
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def format_number(value: float) -> str:
    """A float literal without binary noise: ``1 - 99.95/100`` → ``0.0005``."""
    return f"{round(value, 12):.12g}"


_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(seconds: float) -> str:
    """Seconds → a Prometheus duration: ``2592000`` → ``30d``, ``5400`` → ``1h30m``. Whole seconds only."""
    if seconds <= 0 or seconds != int(seconds):
        raise ValueError(f"expected a positive whole number of seconds, got {seconds!r}")
    rest, out = int(seconds), ""
    for unit, size in _UNITS:
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out


def matcher(label: str, values: Sequence[str]) -> str:
    """``label="v"`` for one value, ``label=~"a|b"`` (regex-escaped, anchored by Prometheus) for several."""
    unique = sorted(set(values))
    if not unique:
        raise ValueError(f"matcher for {label!r} needs at least one value")
    if len(unique) == 1:
        return f"{label}={quote(unique[0])}"
    return f"{label}=~{quote('|'.join(quote_meta(v) for v in unique))}"


def selector(metric: str, exact: Mapping[str, str] | None = None, /, **any_of: Sequence[str]) -> str:
    """``metric{k="v",...,label=~"a|b"}``; ``exact`` values may carry an operator prefix (``"!=http_4xx"``)."""
    parts: list[str] = []
    for label, value in sorted((exact or {}).items()):
        op = "="
        for candidate in ("!=", "=~", "!~"):
            if value.startswith(candidate):
                op, value = candidate, value[len(candidate) :]
                break
        parts.append(f"{label}{op}{quote(value)}")
    parts.extend(matcher(label, values) for label, values in sorted(any_of.items()))
    return f"{metric}{{{','.join(parts)}}}"
