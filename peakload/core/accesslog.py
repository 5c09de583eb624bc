"""Access logs in, typed records out: nginx/Apache combined, HAProxy HTTP log, JSON lines with a field map.

One reader serves ``peakload profile fit`` (the model of last year's peak) and
the ``replay`` journey (last year's requests again). It streams: a file of any
size is read line by line as bytes (no decoding of fields it does not need),
gzip files are read as they are, and a line it cannot parse is counted (with
the first few examples) instead of stopping the read.

Usage::

    log = AccessLog([Path("access.log")], fmt="combined")
    for rec in log.records():               # LogRecord(t, method, path, query, status, ...)
        ...
    log.stats.parsed, log.stats.bad, log.stats.examples

Formats:

- ``combined``: ``%h %l %u [%t] "%r" %>s %b "%{Referer}i" "%{User-agent}i"``
  (the common format without the last two fields parses too). ``%t`` may carry
  milliseconds (``[03/Dec/2026:09:30:00.123 +0000]``). One trailing number
  after the user agent, as nginx's ``$request_time``, is the request's duration
  in seconds.
- ``haproxy``: HAProxy's ``option httplog`` line, with or without the syslog
  prefix; the accept date is the request's start, ``Ta`` its duration, the
  client address the visitor. HAProxy writes local time without a zone: UTC is
  assumed unless ``tz`` says otherwise.
- ``jsonl``: one JSON object per line; ``field_map`` names the fields
  (``time``, ``method``, ``path``, ``status``, ``client``, ``user``, ``ua``,
  ``duration``, ``session``, ``coupon``; dotted names reach into objects).
  ``time`` is ISO 8601 or epoch seconds; ``path`` may hold the query string.
"""

from __future__ import annotations

import calendar
import datetime as dt
import gzip
import heapq
import json
import math
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, NamedTuple

from peakload.core.errors import ConfigError
from peakload.core.inputs import check_path

__all__ = [
    "FORMATS",
    "JSON_FIELDS",
    "LogRecord",
    "LogStats",
    "AccessLog",
    "parse_field_map",
    "parse_tz",
    "format_combined_time",
]

FORMATS: Final[tuple[str, ...]] = ("combined", "haproxy", "jsonl")
JSON_FIELDS: Final[tuple[str, ...]] = ("time", "method", "path", "status", "client", "user", "ua", "duration", "session", "coupon")
_DEFAULT_JSON_MAP: Final[dict[str, str]] = {name: name for name in JSON_FIELDS}
MAX_EXAMPLES: Final = 5  # bad lines quoted in the stats
PROBE_LINES: Final = 1000  # no parsable line among the first this many: the file is not in this format
MAX_LINE: Final = 64 * 1024  # longer lines are counted as bad, not parsed
_MONTHS: Final = {
    m.encode(): i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}


class LogRecord(NamedTuple):
    """One request of the log. ``t``: its start (epoch seconds); ``duration``: seconds, or None when the log lacks it."""

    t: float
    method: str
    path: str  # without the query string
    query: str  # "" when none
    status: int
    client: str
    user: str  # "" when anonymous ("-")
    ua: str
    duration: float | None
    session: str  # "" when the log has no session field
    coupon: str  # "" when none or not logged


@dataclass
class LogStats:
    """What a read saw: lines, parsed records, bad lines with a few examples, bytes read of the total."""

    lines: int = 0
    parsed: int = 0
    bad: int = 0
    examples: list[str] = field(default_factory=list)
    bytes_read: int = 0
    bytes_total: int = 0
    first_t: float | None = None
    last_t: float | None = None

    def bad_line(self, where: str, problem: str) -> None:
        self.bad += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{where}: {problem}")


# ---------------------------------------------------------------- time


def parse_tz(text: str) -> dt.tzinfo:
    """``UTC``, ``+0800``, ``-05:00`` → a fixed zone; ValueError otherwise."""
    t = text.strip()
    if t.upper() in ("UTC", "Z", "GMT"):
        return dt.UTC
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", t)
    if not m:
        raise ValueError(f"expected UTC or an offset like +0800, got {text!r}")
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    if minutes > 14 * 60:
        raise ValueError(f"expected an offset within ±14:00, got {text!r}")
    return dt.timezone(dt.timedelta(minutes=minutes if m.group(1) == "+" else -minutes))


def format_combined_time(t: float) -> str:
    """``03/Dec/2026:09:30:00.123 +0000`` (UTC, milliseconds): what the storefront's access log writes."""
    d = dt.datetime.fromtimestamp(t, dt.UTC)
    return d.strftime("%d/%b/%Y:%H:%M:%S.") + f"{d.microsecond // 1000:03d} +0000"


class _ClockCache:
    """``10/Oct/2000:13:55:36[.123] -0700`` → epoch seconds; the whole-second part is parsed once per distinct second."""

    __slots__ = ("_seconds", "_default_offset")

    def __init__(self, default_offset: float) -> None:
        self._seconds: dict[bytes, float] = {}
        self._default_offset = default_offset

    def __call__(self, raw: bytes) -> float:
        # raw: b"10/Oct/2000:13:55:36.123 -0700" (zone optional for HAProxy)
        base = raw[:20]
        rest = raw[20:]
        frac = 0.0
        if rest[:1] == b".":
            end = rest.find(b" ")
            digits = rest[1:] if end < 0 else rest[1:end]
            if not digits.isdigit():
                raise ValueError("bad fraction of a second")
            frac = int(digits) / 10 ** len(digits)
            rest = b"" if end < 0 else rest[end:]
        zone = rest.strip()
        key = base + b" " + zone
        sec = self._seconds.get(key)
        if sec is None:
            if len(self._seconds) > 100_000:
                self._seconds.clear()
            try:
                day, mon, year = int(base[0:2]), _MONTHS[base[3:6]], int(base[7:11])
                hh, mm, ss = int(base[12:14]), int(base[15:17]), int(base[18:20])
                if base[2:3] != b"/" or base[6:7] != b"/" or base[11:12] != b":":
                    raise ValueError
                stamp = calendar.timegm((year, mon, day, hh, mm, ss, 0, 0, 0))
            except (KeyError, ValueError, IndexError):
                raise ValueError(f"bad time {raw[:40].decode('latin-1')!r}; expected 10/Oct/2000:13:55:36 -0700") from None
            if zone:
                if len(zone) != 5 or zone[:1] not in b"+-" or not zone[1:].isdigit():
                    raise ValueError(f"bad time zone {zone.decode('latin-1')!r}; expected +HHMM or -HHMM")
                offset: float = (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60) * (1 if zone[:1] == b"+" else -1)
            else:
                offset = self._default_offset
            sec = float(stamp - offset)
            self._seconds[key] = sec
        return sec + frac


# ---------------------------------------------------------------- line parsers

_COMBINED = re.compile(
    rb'(\S+) \S+ (\S+) \[([^\]]+)\] "(\S+) (\S+)(?: [^"]*)?" (\d{3}) (?:\d+|-)'
    rb'(?: "(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)")?(?: (\d+(?:\.\d+)?))?'
)
_HAPROXY = re.compile(
    rb"(?:^|\s)([0-9a-fA-F.:\[\]]+):\d+ \[([^\]]+)\] \S+ \S+ (-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/\+?(-?\d+) (\d{3}) \+?\d+ "
    rb'.*?"(\S+) (\S+)'
)


def _split_target(target: str) -> tuple[str, str]:
    if target.startswith(("http://", "https://")):  # an absolute-form request target (proxies)
        slash = target.find("/", target.find("//") + 2)
        target = "/" if slash < 0 else target[slash:]
    path, _, query = target.partition("?")
    return path, query


def _dotted(obj: Any, name: str) -> Any:
    for part in name.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _json_time(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("time is a boolean")
    if isinstance(value, (int, float)):
        t = float(value)
        if t > 1e11:  # epoch milliseconds
            t /= 1000.0
    elif isinstance(value, str):
        try:
            d = dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            raise ValueError(f"time {value[:40]!r} is neither ISO 8601 nor epoch seconds") from None
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.UTC)
        t = d.timestamp()
    else:
        raise ValueError("time missing")
    if not math.isfinite(t) or not 0 <= t < 32_503_680_000:  # before year 3000
        raise ValueError(f"time {value!r} out of range")
    return t


def parse_field_map(text: str | None) -> dict[str, str]:
    """``time=ts,path=request.uri`` → the JSON field names (defaults: each field's own name)."""
    out = dict(_DEFAULT_JSON_MAP)
    if not text:
        return out
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise ValueError(f"expected FIELD=NAME pairs like time=ts,path=uri, got {item!r}")
        if key not in JSON_FIELDS:
            raise ValueError(f"unknown field {key!r}; expected one of {', '.join(JSON_FIELDS)}")
        out[key] = value
    return out


class _Parser:
    """One line (bytes) → LogRecord, or ValueError with the reason."""

    def __init__(self, fmt: str, *, tz: dt.tzinfo, field_map: dict[str, str]) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown log format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.fmt = fmt
        offset = tz.utcoffset(None) or dt.timedelta(0)
        self.clock = _ClockCache(offset.total_seconds())
        self.field_map = field_map
        self.parse: Callable[[bytes], LogRecord] = {"combined": self._combined, "haproxy": self._haproxy, "jsonl": self._jsonl}[fmt]

    def _combined(self, line: bytes) -> LogRecord:
        # fast path: split on the quotes (4x the regex's speed); anything unusual goes to the regex
        parts = line.split(b'"')
        if len(parts) == 7 or len(parts) == 3:
            head = parts[0]
            lb = head.find(b"[")
            rb = head.rfind(b"]")
            fields = head[:lb].split()
            req = parts[1].split(b" ")
            tail = parts[2].split()
            if (
                lb > 0
                and rb > lb
                and len(fields) == 3
                and 2 <= len(req) <= 3
                and len(tail) == 2
                and len(tail[0]) == 3
                and tail[0].isdigit()
            ):
                target = req[1].decode("utf-8", "replace")
                q = target.find("?")
                if target[:1] == "/":
                    path, query = (target, "") if q < 0 else (target[:q], target[q + 1 :])
                else:
                    path, query = _split_target(target)
                user = fields[2]
                ua, duration = b"", None
                if len(parts) == 7:
                    ua = parts[5]
                    extra = parts[6].strip()
                    if extra:
                        try:
                            duration = float(extra.split()[0])
                        except ValueError:
                            duration = None
                        if duration is not None and not (duration >= 0 and duration < 1e9):
                            duration = None
                return LogRecord(
                    self.clock(head[lb + 1 : rb]),
                    req[0].decode("ascii", "replace"),
                    path,
                    query,
                    int(tail[0]),
                    fields[0].decode("ascii", "replace"),
                    "" if user == b"-" else user.decode("utf-8", "replace"),
                    ua.decode("utf-8", "replace"),
                    duration,
                    "",
                    "",
                )
        m = _COMBINED.match(line)
        if m is None:
            raise ValueError('not a combined-format line (%h %l %u [%t] "%r" %>s %b "referer" "user agent")')
        g_host, g_user, g_when, g_method, g_target, g_status, g_ua, g_duration = m.groups()
        path, query = _split_target(g_target.decode("utf-8", "replace"))
        u = g_user.decode("utf-8", "replace")
        return LogRecord(
            self.clock(g_when),
            g_method.decode("ascii", "replace"),
            path,
            query,
            int(g_status),
            g_host.decode("ascii", "replace"),
            "" if u == "-" else u,
            g_ua.decode("utf-8", "replace") if g_ua else "",
            float(g_duration) if g_duration else None,
            "",
            "",
        )

    def _haproxy(self, line: bytes) -> LogRecord:
        m = _HAPROXY.search(line)
        if m is None:
            raise ValueError('not an HAProxy httplog line (client:port [date] frontend backend/server TR/Tw/Tc/Tr/Ta status ... "request")')
        client, when, _tr, _tw, _tc, _tresp, ta, status, method, target = m.groups()
        path, query = _split_target(target.decode("utf-8", "replace"))
        ta_ms = int(ta)
        return LogRecord(
            self.clock(when),
            method.decode("ascii", "replace"),
            path,
            query,
            int(status),
            client.decode("ascii", "replace"),
            "",
            "",
            ta_ms / 1000.0 if ta_ms >= 0 else None,
            "",
            "",
        )

    def _jsonl(self, line: bytes) -> LogRecord:
        try:
            obj = json.loads(line)
        except ValueError:
            raise ValueError("not a JSON object") from None
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        fm = self.field_map
        t = _json_time(_dotted(obj, fm["time"]))
        target = _dotted(obj, fm["path"])
        if not isinstance(target, str) or not target:
            raise ValueError(f"field {fm['path']!r} (path) missing")
        method = _dotted(obj, fm["method"])
        status = _dotted(obj, fm["status"])
        try:
            code = int(status) if status is not None and not isinstance(status, bool) else 0
        except (TypeError, ValueError):
            raise ValueError(f"field {fm['status']!r} (status) is not a number") from None
        duration = _dotted(obj, fm["duration"])
        dur = float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) and duration >= 0 else None
        path, query = _split_target(target)

        def text(name: str) -> str:
            v = _dotted(obj, fm[name])
            return "" if v is None or v == "-" else str(v)

        return LogRecord(
            t,
            str(method or "GET").upper(),
            path,
            query,
            code,
            text("client"),
            text("user"),
            text("ua"),
            dur if dur is not None and math.isfinite(dur) else None,
            text("session"),
            text("coupon"),
        )


# ---------------------------------------------------------------- files


def _open(path: Path) -> tuple[IO[bytes], IO[bytes], int]:
    """(line stream, raw file for progress, size) of a plain or gzip file; ConfigError naming the file."""
    p = check_path(path, what="access log")
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{p}: is a folder; expected an access log file")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{p}: is not a regular file (device, pipe or socket); expected an access log file")
    try:
        raw = open(p, "rb")  # noqa: SIM115 - closed by the reader
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw), raw, st.st_size  # type: ignore[return-value]
    return raw, raw, st.st_size


class AccessLog:
    """Streams one or more access logs as LogRecords in time order (files merged by time).

    ``progress(stats)`` is called every ``every`` lines and at the end.
    A file whose first ``PROBE_LINES`` lines hold no parsable one is refused
    (ConfigError: the file, the format, the first line's problem).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        fmt: str = "combined",
        tz: dt.tzinfo = dt.UTC,
        field_map: dict[str, str] | None = None,
        progress: Callable[[LogStats], None] | None = None,
        every: int = 65_536,
    ) -> None:
        if not paths:
            raise ConfigError("expected at least one access log")
        self.paths = [Path(p) for p in paths]
        self.parser = _Parser(fmt, tz=tz, field_map=field_map or dict(_DEFAULT_JSON_MAP))
        self.stats = LogStats()
        self.progress = progress
        self.every = every

    def _one(self, path: Path, opened: tuple[IO[bytes], IO[bytes], int], done: list[int]) -> Iterator[LogRecord]:
        stream, raw, _size = opened
        parse, stats, fmt = self.parser.parse, self.stats, self.parser.fmt
        probing, seen_good, first_problem = True, False, ""
        n = 0
        last = 0.0
        every, progress = self.every, self.progress
        base_lines, base_parsed = stats.lines, stats.parsed
        next_report = every
        parsed = 0
        try:
            for n, line in enumerate(stream, 1):
                if n >= next_report:  # the counters are written back every `every` lines (cheaper than per line)
                    next_report += every
                    stats.lines, stats.parsed = base_lines + n, base_parsed + parsed
                    stats.bytes_read = sum(done) + raw.tell()
                    if progress is not None:
                        progress(stats)
                if len(line) > MAX_LINE:
                    stats.bad_line(f"{path}:{n}", f"line is {len(line):,} bytes; expected at most {MAX_LINE:,}")
                    continue
                if line.isspace():
                    continue
                try:
                    rec = parse(line)  # every parser ignores the line end
                except (ValueError, UnicodeDecodeError, OverflowError, RecursionError) as exc:
                    if probing and not first_problem:
                        first_problem = f"line {n}: {exc}"
                    stats.bad_line(f"{path}:{n}", str(exc)[:200])
                    if probing and n >= PROBE_LINES:
                        raise ConfigError(f"{path}: none of the first {n:,} lines is a {fmt} access log ({first_problem})") from None
                    continue
                t = rec[0]
                if probing:
                    probing, seen_good = False, True
                    if stats.first_t is None or t < stats.first_t:
                        stats.first_t = t
                    last = stats.last_t if stats.last_t is not None else t
                if t > last:
                    last = t
                parsed += 1
                yield rec
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ConfigError(f"{path}: cannot read line {n + 1}: {exc}") from None
        finally:
            stats.lines, stats.parsed = base_lines + n, base_parsed + parsed
            if seen_good:
                stats.last_t = last if stats.last_t is None else max(stats.last_t, last)
            done.append(raw.tell() if not raw.closed else 0)
            stream.close()
            raw.close()
        if not seen_good:
            if first_problem:
                raise ConfigError(f"{path}: no line is a {fmt} access log ({first_problem})")
            raise ConfigError(f"{path}: the file is empty; expected an access log")

    def records(self) -> Iterator[LogRecord]:
        """Every parsable record of every file, in start-time order (each file is assumed nearly in order)."""
        opened = [_open(p) for p in self.paths]
        self.stats.bytes_total = sum(size for _s, _r, size in opened)
        done: list[int] = []
        streams = [self._one(p, o, done) for p, o in zip(self.paths, opened, strict=True)]
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda r: r.t)
        yield from merged
        stats = self.stats
        stats.bytes_read = stats.bytes_total
        if self.progress is not None:
            self.progress(stats)
