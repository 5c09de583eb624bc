"""Every file, path, URL, port and number a user hands the CLI goes through here first.

Usage::

    data = read_yaml(Path("profiles/smoke.yaml"), what="profile")   # a mapping/list/scalar, or ConfigError
    url = check_url("http://127.0.0.1:8080", field="--target")        # the URL, or UsageError
    out = check_out_dir(Path("out"), field="--out")                   # validated before anything is written

A bad input is one line naming the file, field or flag and what was expected
(exit 2 through :class:`~peakload.core.errors.PeakloadError`), never a traceback:
encodings other than UTF-8, binary data, huge or deeply nested documents,
over-long names, special files, infinite numbers, out-of-range ports.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import math
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from peakload.core.errors import ConfigError, UsageError

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_RESULTS_BYTES",
    "MAX_NODES",
    "MAX_DEPTH",
    "check_path",
    "read_bytes",
    "decode_utf8",
    "read_text",
    "read_yaml",
    "read_json",
    "parse_json_line",
    "check_url",
    "check_host",
    "check_port",
    "check_out_dir",
    "make_dirs",
    "write_atomic",
    "check_finite",
]

MAX_CONFIG_BYTES = 1 << 20  # a profile, SLO spec or experiment is a few KiB; 1 MiB is generous
MAX_RESULTS_BYTES = 256 << 20  # summary.json / capacity.json of a long run
MAX_NODES = 100_000  # values in one YAML/JSON document, counting every alias expansion (billion laughs)
MAX_DEPTH = 32  # nesting levels; a profile needs 5
_NAME_MAX = 255  # bytes per path component (ext4, xfs)
_PATH_MAX = 4095  # bytes per path (Linux PATH_MAX - 1)


def _fail(what: str, path: Path | str, problem: str) -> ConfigError:
    """``<path>: <problem>`` — the path first, like every config error (``what`` names the file's role)."""
    return ConfigError(f"{path}: {problem}")


def _a_file(what: str) -> str:
    return f"a {what} file" if what else "a file"


def check_path(path: Path | str, *, what: str = "") -> Path:
    """Refuse names the OS cannot take (NUL, over-long) with one line instead of an OSError later."""
    text = os.fspath(path)
    if not text or not text.strip():
        raise _fail(what, repr(text), "expected a path, got an empty string")
    if "\x00" in text:
        raise _fail(what, repr(text), "a path cannot contain NUL bytes")
    raw = os.fsencode(text)
    if len(raw) > _PATH_MAX:
        raise _fail(what, text[:60] + "…", f"path is {len(raw)} bytes long; the limit is {_PATH_MAX}")
    for part in raw.split(b"/"):
        if len(part) > _NAME_MAX:
            raise _fail(what, text[:60] + "…", f"a path component is {len(part)} bytes long; the limit is {_NAME_MAX}")
    return Path(text)


def _stat_file(path: Path, what: str) -> os.stat_result:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _fail(what, path, "file not found") from None
    except NotADirectoryError:
        raise _fail(what, path, "file not found (a parent in the path is a file, not a folder)") from None
    except PermissionError:
        raise _fail(what, path, "permission denied") from None
    except OSError as exc:
        raise _fail(what, path, f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(what, path, f"is a folder; expected {_a_file(what)}")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(what, path, f"is not a regular file (device, pipe or socket); expected {_a_file(what)}")
    return st


def read_bytes(path: Path | str, *, what: str = "", max_bytes: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, or ConfigError."""
    p = check_path(path, what=what)
    st = _stat_file(p, what)
    if st.st_size > max_bytes:
        raise _fail(what, p, f"is {st.st_size:,} bytes; expected at most {max_bytes:,}")
    try:
        with open(p, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except PermissionError:
        raise _fail(what, p, "permission denied") from None
    except OSError as exc:
        raise _fail(what, p, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:  # grew while we looked
        raise _fail(what, p, f"is over {max_bytes:,} bytes; expected at most {max_bytes:,}")
    return data


_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


def decode_utf8(data: bytes, *, what: str, path: Path | str) -> str:
    """UTF-8 (a leading BOM is accepted) or a ConfigError that says which encoding it looks like."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise _fail(what, path, f"is {name} encoded; expected UTF-8 text (re-save the file as UTF-8)")
    if b"\x00" in data:
        raise _fail(what, path, "contains NUL bytes (binary data); expected UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(
            what,
            path,
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); expected UTF-8 (re-save the file as UTF-8)",
        ) from None
    return text.removeprefix("\ufeff")


def read_text(path: Path | str, *, what: str = "", max_bytes: int = MAX_CONFIG_BYTES) -> str:
    """A UTF-8 text file, checked for size, binary content and encoding."""
    return decode_utf8(read_bytes(path, what=what, max_bytes=max_bytes), what=what, path=path)


def _check_shape(doc: Any, *, what: str, path: Path | str) -> None:
    """Iteratively bound a parsed document's size and depth (no recursion, so no RecursionError)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise _fail(what, path, f"holds more than {MAX_NODES:,} values (YAML aliases count once per use); expected a small document")
        if isinstance(node, dict):
            items: list[Any] = [*node.keys(), *node.values()]
        elif isinstance(node, list):
            items = node
        else:
            continue  # a scalar; field validation judges its value
        if depth >= MAX_DEPTH and items:
            raise _fail(what, path, f"is nested more than {MAX_DEPTH} levels deep; expected a flat document")
        stack.extend((child, depth + 1) for child in items)


def read_yaml(path: Path | str, *, what: str = "", max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """Parse one YAML document safely: syntax errors with line/column, bounded size and depth."""
    text = read_text(path, what=what, max_bytes=max_bytes)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise _fail(what, path, f"{where} invalid YAML: {problem}".lstrip()) from None
    except RecursionError:
        raise _fail(what, path, f"is nested too deeply to parse; expected at most {MAX_DEPTH} levels") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a timestamp like 2026-13-45
        raise _fail(what, path, f"invalid YAML value: {exc}") from None
    _check_shape(doc, what=what, path=path)
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json_line(raw: bytes | str) -> Any:
    """One JSON value, strict: no NaN/Infinity, bounded nesting. Raises ValueError for anything bad."""
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def read_json(path: Path | str, *, what: str = "", max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """A UTF-8 JSON file (strict numbers, bounded size and depth), or ConfigError."""
    text = read_text(path, what=what, max_bytes=max_bytes)
    if not text.strip():
        raise _fail(what, path, "is empty; expected a JSON document")
    try:
        doc = parse_json_line(text)
    except ValueError as exc:
        raise _fail(what, path, f"invalid JSON: {str(exc).splitlines()[0]}") from None
    _check_shape(doc, what=what, path=path)
    return doc


# ---------------------------------------------------------------- network

_HOST_RE = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?$")


def check_host(host: str, *, field: str) -> str:
    """A DNS name or an IP address (no scheme, port or path)."""
    if not isinstance(host, str) or not host:
        raise UsageError(f"{field}: expected a host name like shop.example or 10.0.0.5, got {host!r}")
    if "://" in host or "/" in host:
        raise UsageError(f"{field}: expected a host name, not a URL: {host!r}")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
        return bare
    except ValueError:
        pass
    if not _HOST_RE.match(host):
        raise UsageError(f"{field}: expected a host name like shop.example or 10.0.0.5, got {host!r}")
    return host.lower()


def check_port(port: Any, *, field: str, allow_zero: bool = False) -> int:
    """A TCP port 1..65535 (0 too when it means "pick a free one" / "off")."""
    lo = 0 if allow_zero else 1
    if isinstance(port, bool) or not isinstance(port, int) or not lo <= port <= 65535:
        raise UsageError(f"{field}: expected a port {lo}..65535, got {port!r}")
    return int(port)


def check_url(url: Any, *, field: str) -> str:
    """An http(s) base URL with a valid host and port; nothing is sent anywhere before this passes."""
    example = "like http://127.0.0.1:8080"
    if not isinstance(url, str) or not url:
        raise UsageError(f"{field}: expected an http(s) URL {example}, got {url!r}")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UsageError(f"{field}: a URL cannot contain spaces or control characters, got {url!r}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UsageError(f"{field}: expected an http(s) URL {example}, got {url!r} ({exc})") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{field}: expected an http(s) URL {example}, got {url!r}")
    if parts.query or parts.fragment:
        raise UsageError(f"{field}: expected a base URL without ?query or #fragment, got {url!r}")
    hostport = parts.netloc.rpartition("@")[2]
    port_text = ""
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise UsageError(f"{field}: malformed host in {url!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = hostport.partition(":")
        if sep and not port_text:
            raise UsageError(f"{field}: empty port in {url!r}; expected a port 1..65535")
    check_host(host, field=field)
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise UsageError(f"{field}: expected a port 1..65535 in {url!r}, got {port_text!r}")
    return url


# ---------------------------------------------------------------- outputs and numbers


def check_out_dir(path: Path | str, *, field: str) -> Path:
    """A folder to write into: refused before anything is written if it cannot be one."""
    text = os.fspath(path)
    if not text.strip():
        raise UsageError(f"{field}: expected a folder path, got {text!r}")
    try:
        p = check_path(text)
    except ConfigError as exc:
        raise UsageError(f"{field}: {exc}") from None
    probe = p
    while True:
        try:
            st = probe.stat()
        except FileNotFoundError:
            if probe.parent == probe:
                break
            probe = probe.parent
            continue
        except OSError as exc:
            raise UsageError(f"{field}: {p}: cannot use: {exc.strerror or exc}") from None
        if not stat.S_ISDIR(st.st_mode):
            where = "exists and is not a folder" if probe == p else f"{probe} is a file, not a folder"
            raise UsageError(f"{field}: {p}: {where}")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise UsageError(f"{field}: {p}: folder {probe} is not writable")
        break
    return p


def make_dirs(path: Path, *, field: str, exist_ok: bool = True) -> Path:
    """``mkdir -p`` with the OS error turned into one line naming the flag."""
    try:
        path.mkdir(parents=True, exist_ok=exist_ok)
    except FileExistsError:
        raise UsageError(f"{field}: {path}: already exists") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UsageError(f"{field}: {path}: no space left on the device") from None
        raise UsageError(f"{field}: {path}: cannot create: {exc.strerror or exc}") from None
    return path


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) through a temporary file in the same folder and a rename: a reader sees the old file
    or the whole new one, never half of it, and a failed write leaves nothing behind."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_finite(value: float, *, field: str, lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> float:
    """A finite number within [lo, hi] (``lo_open``: strictly above lo)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{field}: expected a finite number, got {value!r}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise UsageError(f"{field}: expected a number {'>' if lo_open else '>='} {lo:g}, got {value:g}")
    if hi is not None and value > hi:
        raise UsageError(f"{field}: expected a number <= {hi:g}, got {value:g}")
    return float(value)
